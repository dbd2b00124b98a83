"""The CA as the Django side sees it: its certificates and key, loaded once per process.

The pure PKI code lives in ``issuance.pki``; this module only finds the material through the
settings. The private keys are kept by a ``KeyStore`` (encrypted files today; an HSM later).
"""

from __future__ import annotations

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

logger = logging.getLogger(__name__)

ROOT_NAME = "root"
ISSUING_NAME = "issuing"
ROOT_DAYS = 20 * 365
ISSUING_DAYS = 10 * 365


class CaUnavailableError(Exception):
    """The CA cannot sign: not created yet, or its passphrase is missing or wrong."""


@dataclass(frozen=True)
class CaMaterial:
    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: keys.PrivateKey
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


def key_store() -> keys.KeyStore:
    try:
        return keys.EncryptedFileKeyStore(ca_dir() / "private", passphrase())
    except keys.PassphraseError as error:
        raise CaUnavailableError(str(error)) from error


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


def create(key_type: str = keys.DEFAULT_KEY_TYPE, now: datetime | None = None) -> CaMaterial:
    """Creates the root and the issuing CA once; refuses when a CA is there already."""
    if exists() or certificate_path(ROOT_NAME).exists():
        raise CaUnavailableError(f"A CA exists already in {ca_dir()}; it is never overwritten.")
    now = now or datetime.now(UTC)
    store = key_store()
    ca_dir().mkdir(parents=True, exist_ok=True)
    organization = settings.KIHONET_CA_ORGANIZATION
    root_key = keys.generate_private_key(key_type)
    root_cert = profile.create_root_ca(
        root_key, f"{organization} Client Root CA", organization, now, ROOT_DAYS
    )
    issuing_key = keys.generate_private_key(key_type)
    issuing_cert = profile.create_issuing_ca(
        issuing_key.public_key(),
        root_cert,
        root_key,
        f"{organization} Client Issuing CA",
        organization,
        now,
        ISSUING_DAYS,
    )
    store.save(ROOT_NAME, root_key)
    store.save(ISSUING_NAME, issuing_key)
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
        issuing_key = key_store().load(ISSUING_NAME)
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
        if current.next_update_utc - ROOT_CRL_RENEW_BEFORE > now:
            return path.read_bytes()
    material = signing_material()
    root_key = key_store().load(ROOT_NAME)
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
