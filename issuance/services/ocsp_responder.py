"""The delegated OCSP responder (RFC 6960 4.2.2.2): a short-lived certificate the issuing CA
issues, with id-kp-OCSPSigning and id-pkix-ocsp-nocheck, whose key signs the OCSP responses.

So OCSP does not need the CA key (in an HSM: a signature in the token per response): the CA
key signs one responder certificate every few days. The responder's key is an encrypted file
of the file store in the CA folder, whichever store holds the CA keys: OCSP is the hot path and
must not be bound by the token's rate or sessions, a stolen responder key is worth little for
long (the certificate lives ``KIHONET_OCSP_RESPONDER_DAYS``), and the CA keys stay in the token.

A new responder is issued lazily, on the first response after ``renew_after`` (the hourly CRL
job asks too, so a quiet responder is renewed as well), by one process at a time (a file lock
in the CA folder). While the token is down the current certificate is used until it expires.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone

from issuance import audit, ca
from issuance.pki import keys, profile

logger = logging.getLogger(__name__)

DIRECTORY = "ocsp"
KEY_PREFIX = "ocsp-"
RETRY_AFTER_FAILURE = timedelta(minutes=5)


@dataclass(frozen=True)
class Responder:
    cert: x509.Certificate
    key: keys.PrivateKey
    issuing_cert: x509.Certificate
    renew_after: datetime


_current: Responder | None = None
_lock = threading.Lock()


def responder(now: datetime | None = None) -> Responder:
    """The responder to sign with, issued or renewed first when due.

    Raises ``ca.CaUnavailableError`` only when there is no valid responder certificate and the
    CA cannot issue one now (the OCSP view then answers tryLater)."""
    global _current
    now = now or timezone.now()
    material = ca.load()
    current = _current
    if current is not None and current.issuing_cert is material.issuing_cert:
        if now < current.renew_after:
            return current
    with _lock:
        current = _current
        if current is None or current.issuing_cert is not material.issuing_cert:
            current = None
        if current is None or now >= current.renew_after:
            _current = current = _load_or_issue(material, now, current)
    return current


def _directory() -> Path:
    return ca.ca_dir() / DIRECTORY


def _load_or_issue(material: ca.CaMaterial, now: datetime, current: Responder | None):
    directory = _directory()
    directory.mkdir(mode=0o755, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one issuer at a time across the processes
        newest = _newest_on_disk(material, now)
        if newest is not None and now < newest.renew_after:
            return newest
        try:
            return _issue(material, now)
        except (ca.CaUnavailableError, keys.KeyStoreError) as error:
            usable = newest or current
            if usable is None or now >= usable.cert.not_valid_after_utc:
                logger.error("No OCSP responder certificate and the CA cannot sign: %s", error)
                raise ca.CaUnavailableError(str(error)) from error
            logger.error(
                "Cannot renew the OCSP responder (valid until %s): %s",
                usable.cert.not_valid_after_utc.isoformat(),
                error,
            )
            return Responder(
                usable.cert, usable.key, usable.issuing_cert, now + RETRY_AFTER_FAILURE
            )


def _renew_after(cert: x509.Certificate) -> datetime:
    before = timedelta(days=settings.KIHONET_OCSP_RESPONDER_RENEW_DAYS)
    return cert.not_valid_after_utc - before


def _newest_on_disk(material: ca.CaMaterial, now: datetime) -> Responder | None:
    """The valid responder of this issuing CA with the latest notAfter, if any."""
    found: list[x509.Certificate] = []
    for path in _directory().glob(f"{KEY_PREFIX}*.crt.pem"):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            cert.verify_directly_issued_by(material.issuing_cert)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            found.append(cert)
    if not found:
        return None
    cert = max(found, key=lambda c: c.not_valid_after_utc)
    try:
        key = ca.file_key_store().load(_key_name(cert))
    except keys.KeyStoreError as error:  # e.g. the passphrase changed: a new one is issued
        logger.warning("Cannot load the OCSP responder key: %s", error)
        return None
    if not isinstance(key, keys.PrivateKey):
        return None
    profile.check_ocsp_responder(cert, material.issuing_cert, key)
    return Responder(cert, key, material.issuing_cert, _renew_after(cert))


def _key_name(cert: x509.Certificate) -> str:
    return f"{KEY_PREFIX}{profile.serial_hex(cert.serial_number)}"


def _issue(material: ca.CaMaterial, now: datetime) -> Responder:
    """A new responder key (file store) and certificate (signed by the CA key), audited."""
    store = ca.file_key_store()
    key = keys.generate_private_key("ec-p256")
    cert = profile.build_ocsp_responder_certificate(
        key.public_key(),
        settings.KIHONET_CA_ORGANIZATION,
        now - timedelta(minutes=5),  # a client's clock a little behind
        timedelta(days=settings.KIHONET_OCSP_RESPONDER_DAYS),
        material.issuing_cert,
        material.issuing_key,
    )
    store.save(_key_name(cert), key)
    path = _directory() / f"{_key_name(cert)}.crt.pem"
    ca.write_atomically(path, cert.public_bytes(serialization.Encoding.PEM))
    audit.record(
        audit.Actor.system("ocsp_responder"),
        "ocsp_responder_issued",
        detail={
            "serial": profile.serial_hex(cert.serial_number),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256": profile.certificate_fingerprint(cert),
        },
    )
    logger.info("Issued OCSP responder certificate %s", profile.serial_hex(cert.serial_number))
    _remove_expired(now)
    return Responder(cert, key, material.issuing_cert, _renew_after(cert))


def _remove_expired(now: datetime) -> None:
    """Certificates and keys of responders expired a day ago or more."""
    for path in _directory().glob(f"{KEY_PREFIX}*.crt.pem"):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        if cert.not_valid_after_utc + timedelta(days=1) < now:
            ca.file_key_store().path_for(_key_name(cert)).unlink(missing_ok=True)
            path.unlink(missing_ok=True)


def forget() -> None:
    """Drops the process's responder (tests that switch CAs or move the clock)."""
    global _current
    with _lock:
        _current = None
