"""Certificate revocation lists (RFC 5280 section 5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .keys import PrivateKey
from .profile import authority_key_identifier, check_issuer_key, signature_hash_for, utc

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def reason_from_name(name: str) -> x509.ReasonFlags:
    """RFC 5280 reason name (e.g. "keyCompromise") to its flag; ValueError if unknown."""
    try:
        return REASONS[name]
    except KeyError:
        raise ValueError(f"unknown revocation reason {name!r}") from None


def reason_extension(reason: x509.ReasonFlags | None) -> x509.CRLReason | None:
    """The reasonCode to emit, or None: RFC 5280 5.3.1 says to omit "unspecified"."""
    if reason is None or reason == x509.ReasonFlags.unspecified:
        return None
    return x509.CRLReason(reason)


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None


def _revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    reason = reason_extension(entry.reason)
    if reason is not None and entry.reason == x509.ReasonFlags.remove_from_crl:
        raise ValueError("removeFromCRL is only allowed in delta CRLs")
    extensions = [] if reason is None else [x509.Extension(reason.oid, False, reason)]
    return x509.RevokedCertificateBuilder(entry.serial, utc(entry.revoked_at), extensions).build()


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A complete v2 CRL with AuthorityKeyIdentifier and CRLNumber, signed by the issuer.

    The builder is given all entries at once (its ``add_revoked_certificate``
    copies the list on each call, which would be quadratic).
    """
    check_issuer_key(issuer_cert, issuer_key)
    if crl_number < 0 or crl_number.bit_length() > 159:
        raise ValueError("crl_number must be non-negative and at most 20 octets")
    start, end = utc(this_update), utc(next_update)
    if end <= start:
        raise ValueError("next_update must be after this_update")
    extensions = [
        x509.Extension(
            x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer_cert)
        ),
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(crl_number)),
    ]
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer_cert.subject,
        last_update=start,
        next_update=end,
        extensions=extensions,
        revoked_certificates=[_revoked_certificate(entry) for entry in entries],
    )
    return builder.sign(issuer_key, signature_hash_for(issuer_key))


def crl_to_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_to_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)
