from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from issuance.pki.crl import (
    REASONS,
    RevokedEntry,
    build_crl,
    crl_to_der,
    crl_to_pem,
    reason_from_name,
)
from issuance.pki.profile import ProfileError
from tests.pki.conftest import Pki

NOW = datetime.now(UTC).replace(microsecond=0)
NEXT = NOW + timedelta(days=1)


def reason_of(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


@pytest.fixture(scope="module")
def crl(pki: Pki) -> x509.CertificateRevocationList:
    entries = [
        RevokedEntry(1001, NOW - timedelta(days=3), reason_from_name("keyCompromise")),
        RevokedEntry(1002, NOW - timedelta(days=2), reason_from_name("unspecified")),
        RevokedEntry(1003, NOW - timedelta(days=1), None),
        RevokedEntry(1004, NOW - timedelta(hours=1), reason_from_name("cessationOfOperation")),
        RevokedEntry(2**158 + 7, NOW, reason_from_name("certificateHold")),
    ]
    return build_crl(pki.issuing_cert, pki.issuing_key, entries, 42, NOW, NEXT)


def test_reason_names() -> None:
    assert len(REASONS) == 10
    assert reason_from_name("keyCompromise") is x509.ReasonFlags.key_compromise
    assert reason_from_name("aACompromise") is x509.ReasonFlags.aa_compromise
    assert reason_from_name("cACompromise") is x509.ReasonFlags.ca_compromise
    with pytest.raises(ValueError, match="unknown revocation reason"):
        reason_from_name("key_compromise")


def test_header(pki: Pki, crl: x509.CertificateRevocationList) -> None:
    assert crl.issuer == pki.issuing_cert.subject
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NEXT
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = pki.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert len(crl.extensions) == 2
    assert crl.is_signature_valid(pki.issuing_cert.public_key())
    assert not crl.is_signature_valid(pki.root_cert.public_key())


def test_entries_and_reasons(crl: x509.CertificateRevocationList) -> None:
    by_serial = {entry.serial_number: entry for entry in crl}
    assert sorted(by_serial) == [1001, 1002, 1003, 1004, 2**158 + 7]
    assert reason_of(by_serial[1001]) == x509.ReasonFlags.key_compromise
    assert reason_of(by_serial[1002]) is None  # "unspecified" is not emitted
    assert len(by_serial[1002].extensions) == 0
    assert reason_of(by_serial[1003]) is None
    assert reason_of(by_serial[1004]) == x509.ReasonFlags.cessation_of_operation
    assert reason_of(by_serial[2**158 + 7]) == x509.ReasonFlags.certificate_hold
    assert by_serial[1001].revocation_date_utc == NOW - timedelta(days=3)
    assert crl.get_revoked_certificate_by_serial_number(1004) is not None


def test_empty_crl(pki: Pki) -> None:
    crl = build_crl(pki.issuing_cert, pki.issuing_key, [], 1, NOW, NEXT)
    assert len(crl) == 0
    assert crl.is_signature_valid(pki.issuing_cert.public_key())


def test_encodings(crl: x509.CertificateRevocationList) -> None:
    assert crl_to_pem(crl).startswith(b"-----BEGIN X509 CRL-----")
    assert x509.load_der_x509_crl(crl_to_der(crl)) == crl
    assert crl_to_der(crl) == crl.public_bytes(serialization.Encoding.DER)


def test_remove_from_crl_refused(pki: Pki) -> None:
    entry = RevokedEntry(1, NOW, reason_from_name("removeFromCRL"))
    with pytest.raises(ValueError, match="delta"):
        build_crl(pki.issuing_cert, pki.issuing_key, [entry], 1, NOW, NEXT)


def test_generator_of_entries(pki: Pki) -> None:
    entries = (RevokedEntry(serial, NOW, None) for serial in range(1, 1001))
    crl = build_crl(pki.issuing_cert, pki.issuing_key, entries, 7, NOW, NEXT)
    assert len(crl) == 1000


def test_bad_arguments(pki: Pki) -> None:
    with pytest.raises(ValueError, match="next_update"):
        build_crl(pki.issuing_cert, pki.issuing_key, [], 1, NOW, NOW)
    with pytest.raises(ValueError, match="crl_number"):
        build_crl(pki.issuing_cert, pki.issuing_key, [], -1, NOW, NEXT)
    with pytest.raises(ProfileError):
        build_crl(pki.issuing_cert, pki.root_key, [], 1, NOW, NEXT)
