"""The CA as the Django side sees it: its certificates and key, loaded once per process.

The pure PKI code lives in ``issuance.pki``; this module only finds the material through the
settings. The private keys are kept by a ``KeyStore``: encrypted files in the CA folder, or a
PKCS#11 token (``KIHONET_CA_KEYSTORE=pkcs11``) whose session is opened once per process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from issuance.errors import CaUnavailableServiceError
from issuance.pki import crl as pki_crl
from issuance.pki import keys, profile
from issuance.pki.pkcs11 import Pkcs11KeyStore

logger = logging.getLogger(__name__)

ROOT_NAME = "root"
ISSUING_NAME = "issuing"
ROOT_DAYS = 20 * 365
ISSUING_DAYS = 10 * 365


KEYSTORES = ("file", "pkcs11")
KEYSTORE_RECORD = "keystore.json"


class CaUnavailableError(Exception):
    """The CA cannot sign: not created yet, its passphrase or PIN is missing or wrong, or its
    token does not answer. The message is for the operator and never holds a secret."""


@dataclass(frozen=True)
class CaMaterial:
    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: keys.SigningKey
    client_profile: profile.ClientCertificateProfile

    @cached_property
    def chain_pem(self) -> str:
        """The issuing CA then the root, as the client tool installs them (made once per
        loaded CA: every issued certificate is answered with it)."""
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (self.issuing_cert, self.root_cert)
        )


def ca_dir() -> Path:
    return Path(settings.KIHONET_CA_DIR)


def certificate_path(name: str) -> Path:
    return ca_dir() / f"{name}.crt.pem"


def passphrase() -> bytes:
    """The CA passphrase from ``KIHONET_CA_PASSPHRASE`` or the file ``..._FILE`` names."""
    if settings.KIHONET_CA_PASSPHRASE:
        return settings.KIHONET_CA_PASSPHRASE.encode()
    path = settings.KIHONET_CA_PASSPHRASE_FILE
    if path and Path(path).is_file():
        value = Path(path).read_text().strip()
        if value:
            return value.encode()
    raise CaUnavailableError(
        "The CA passphrase is missing: set KIHONET_CA_PASSPHRASE or KIHONET_CA_PASSPHRASE_FILE."
    )


def file_key_store() -> keys.EncryptedFileKeyStore:
    """The encrypted files in the CA folder: the CA keys with ``KIHONET_CA_KEYSTORE=file``, and
    the delegated OCSP responder's keys with either store."""
    try:
        return keys.EncryptedFileKeyStore(ca_dir() / "private", passphrase())
    except keys.PassphraseError as error:
        raise CaUnavailableError(str(error)) from error


def token_pin() -> str:
    """The token's user PIN from ``KIHONET_CA_PKCS11_PIN_FILE`` or ``KIHONET_CA_PKCS11_PIN``."""
    path = settings.KIHONET_CA_PKCS11_PIN_FILE
    if path and Path(path).is_file():
        value = Path(path).read_text().strip()
        if value:
            return value
    if settings.KIHONET_CA_PKCS11_PIN:
        return settings.KIHONET_CA_PKCS11_PIN
    raise CaUnavailableError(
        "The token PIN is missing: set KIHONET_CA_PKCS11_PIN_FILE or KIHONET_CA_PKCS11_PIN."
    )


_token_stores: dict[tuple[str, ...], Pkcs11KeyStore] = {}
_token_stores_lock = threading.Lock()


def token_key_store(token_label: str | None = None) -> Pkcs11KeyStore:
    """The token of the settings (or ``token_label``), one store and session per process."""
    module = settings.KIHONET_CA_PKCS11_MODULE
    if not module:
        raise CaUnavailableError("KIHONET_CA_PKCS11_MODULE (the PKCS#11 module) is not set.")
    label = token_label or settings.KIHONET_CA_PKCS11_TOKEN
    labels = {
        ROOT_NAME: settings.KIHONET_CA_PKCS11_ROOT_KEY_LABEL,
        ISSUING_NAME: settings.KIHONET_CA_PKCS11_ISSUING_KEY_LABEL,
    }
    pin = token_pin()
    slot = (module, label, labels[ROOT_NAME], labels[ISSUING_NAME], pin)
    with _token_stores_lock:
        if slot not in _token_stores:
            _token_stores[slot] = Pkcs11KeyStore(module, label, pin, labels)
        return _token_stores[slot]


def key_store(kind: str | None = None, token_label: str | None = None) -> keys.KeyStore:
    """The store of the CA keys: ``kind`` or ``KIHONET_CA_KEYSTORE`` ("file" or "pkcs11")."""
    kind = kind or settings.KIHONET_CA_KEYSTORE
    if kind == "file":
        return file_key_store()
    if kind == "pkcs11":
        return token_key_store(token_label)
    raise CaUnavailableError(f"KIHONET_CA_KEYSTORE must be one of {', '.join(KEYSTORES)}.")


def _record_keystore(kind: str, store: keys.KeyStore) -> None:
    record: dict[str, str] = {"keystore": kind}
    if isinstance(store, Pkcs11KeyStore):
        record |= {
            "token": store.token_label,
            "root_key_label": store.label_for(ROOT_NAME),
            "issuing_key_label": store.label_for(ISSUING_NAME),
        }
    (ca_dir() / KEYSTORE_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def recorded_keystore() -> dict[str, str]:
    """What ``init_ca`` wrote about where the keys are (a CA made before says nothing: file)."""
    path = ca_dir() / KEYSTORE_RECORD
    return json.loads(path.read_text()) if path.exists() else {"keystore": "file"}


def _ca_key_store() -> keys.KeyStore:
    """The CA keys' store, checked against the one the CA was created with."""
    recorded = recorded_keystore()
    kind = settings.KIHONET_CA_KEYSTORE
    if recorded["keystore"] != kind:
        raise CaUnavailableError(
            f"The CA keys are in the {recorded['keystore']} key store, but "
            f"KIHONET_CA_KEYSTORE={kind}: set it to {recorded['keystore']}."
        )
    return key_store(kind)


def client_profile() -> profile.ClientCertificateProfile:
    return profile.ClientCertificateProfile(
        organization=settings.KIHONET_CA_ORGANIZATION,
        urls=profile.CaUrls(settings.KIHONET_BASE_URL),
    )


def exists() -> bool:
    return certificate_path(ISSUING_NAME).exists()


def _write_certificate(name: str, cert: x509.Certificate) -> None:
    path = certificate_path(name)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)


def create(
    key_type: str = keys.DEFAULT_KEY_TYPE,
    now: datetime | None = None,
    keystore: str | None = None,
    token_label: str | None = None,
) -> CaMaterial:
    """Creates the root and the issuing CA once; refuses when a CA or its keys are there
    already. The keys are generated by the store: in the token itself with "pkcs11"."""
    if exists() or certificate_path(ROOT_NAME).exists():
        raise CaUnavailableError(f"A CA exists already in {ca_dir()}; it is never overwritten.")
    now = now or datetime.now(UTC)
    kind = keystore or settings.KIHONET_CA_KEYSTORE
    store = key_store(kind, token_label)
    try:
        for name in (ROOT_NAME, ISSUING_NAME):
            if store.exists(name):
                raise CaUnavailableError(
                    f"The {kind} key store has a {name} key already; it is never overwritten."
                )
        ca_dir().mkdir(parents=True, exist_ok=True)
        organization = settings.KIHONET_CA_ORGANIZATION
        root_key = store.generate(ROOT_NAME, key_type)
        root_cert = profile.create_root_ca(
            root_key, f"{organization} Client Root CA", organization, now, ROOT_DAYS
        )
        issuing_key = store.generate(ISSUING_NAME, key_type)
        issuing_cert = profile.create_issuing_ca(
            issuing_key.public_key(),
            root_cert,
            root_key,
            f"{organization} Client Issuing CA",
            organization,
            now,
            ISSUING_DAYS,
        )
    except keys.KeyStoreError as error:
        raise CaUnavailableError(str(error)) from error
    _record_keystore(kind, store)
    _write_certificate(ROOT_NAME, root_cert)
    _write_certificate(ISSUING_NAME, issuing_cert)
    reset()
    return load()


_loaded: CaMaterial | None = None
_lock = threading.Lock()


def load() -> CaMaterial:
    """The CA material, read and decrypted once per process."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            _loaded = _read()
    return _loaded


def reset() -> None:
    """Forgets the loaded CA (after creating one, or in tests that switch CAs)."""
    global _loaded
    with _lock:
        _loaded = None


def _read() -> CaMaterial:
    if not exists():
        raise CaUnavailableError("The CA has not been created yet: run `manage.py init_ca`.")
    try:
        issuing_key = _ca_key_store().load(ISSUING_NAME)
    except keys.KeyStoreError as error:
        raise CaUnavailableError(str(error)) from error
    return CaMaterial(
        root_cert=x509.load_pem_x509_certificate(certificate_path(ROOT_NAME).read_bytes()),
        issuing_cert=x509.load_pem_x509_certificate(certificate_path(ISSUING_NAME).read_bytes()),
        issuing_key=issuing_key,
        client_profile=client_profile(),
    )


def signing_material() -> CaMaterial:
    """``load()`` for the services: a customer is told only that issuing is not possible now."""
    try:
        return load()
    except CaUnavailableError as error:
        logger.error("The CA cannot sign: %s", error)
        raise CaUnavailableServiceError() from error


ROOT_CRL_DAYS = 365
ROOT_CRL_RENEW_BEFORE = timedelta(days=30)


def root_crl_pem(now: datetime) -> bytes:
    """The root's CRL (it has revoked nothing), kept in the CA folder and re-signed a month
    before its nextUpdate. TLS servers such as nginx check a CRL for every CA in the chain."""
    path = ca_dir() / "root-crl.pem"
    if path.exists():
        current = x509.load_pem_x509_crl(path.read_bytes())
        next_update = current.next_update_utc  # None only in a CRL that was not made here
        if next_update is not None and next_update - ROOT_CRL_RENEW_BEFORE > now:
            return path.read_bytes()
    material = signing_material()
    try:
        root_key = _ca_key_store().load(ROOT_NAME)
    except (keys.KeyStoreError, CaUnavailableError) as error:
        logger.error("The root CA cannot sign its CRL: %s", error)
        raise CaUnavailableServiceError() from error
    signed = pki_crl.build_crl(
        material.root_cert,
        root_key,
        [],
        int(now.timestamp()),
        now,
        now + timedelta(days=ROOT_CRL_DAYS),
    )
    pem = pki_crl.crl_to_pem(signed)
    write_atomically(path, pem)
    return pem


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    os.replace(temporary, path)
