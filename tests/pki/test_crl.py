from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------- the fast encoder against
# cryptography's own CRL builder: the same entries give the same TBSCertList, byte for byte.


def reference_crl(
    issuer_cert: x509.Certificate,
    issuer_key,
    entries: list[RevokedEntry],
    number: int,
) -> x509.CertificateRevocationList:
    """What ``CertificateRevocationListBuilder`` makes of the entries (the slow path)."""
    from issuance.pki.crl import reason_extension
    from issuance.pki.profile import authority_key_identifier
    from issuance.pki.signing import sign

    revoked = []
    for entry in entries:
        reason = reason_extension(entry.reason)
        extensions = [] if reason is None else [x509.Extension(reason.oid, False, reason)]
        revoked.append(
            x509.RevokedCertificateBuilder(
                entry.serial, entry.revoked_at.replace(microsecond=0), extensions
            ).build()
        )
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer_cert.subject,
        last_update=NOW,
        next_update=NEXT,
        extensions=[
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer_cert)
            ),
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        ],
        revoked_certificates=revoked,
    )
    return sign(builder, issuer_key)


VARIED_ENTRIES = [
    RevokedEntry(0, NOW, None),
    RevokedEntry(0x7F, NOW - timedelta(seconds=1), REASONS["keyCompromise"]),
    RevokedEntry(0x80, NOW - timedelta(days=400), REASONS["unspecified"]),
    RevokedEntry(0xFF00, datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), REASONS["superseded"]),
    RevokedEntry(2**64, datetime(2050, 1, 1, tzinfo=UTC), REASONS["aACompromise"]),
    RevokedEntry(2**159 - 1, datetime(1999, 6, 1, 12, tzinfo=UTC), REASONS["privilegeWithdrawn"]),
    RevokedEntry(12345, NOW - timedelta(microseconds=1), REASONS["affiliationChanged"]),
] + [
    RevokedEntry(10_000 + index, NOW - timedelta(minutes=index), flag)
    for index, flag in enumerate(REASONS.values())
    if flag != x509.ReasonFlags.remove_from_crl
]


def test_the_fast_encoder_matches_the_cryptography_builder(pki: Pki) -> None:
    fast = build_crl(pki.issuing_cert, pki.issuing_key, VARIED_ENTRIES, 77, NOW, NEXT)
    reference = reference_crl(pki.issuing_cert, pki.issuing_key, VARIED_ENTRIES, 77)
    assert fast.tbs_certlist_bytes == reference.tbs_certlist_bytes
    assert fast.signature_algorithm_oid == reference.signature_algorithm_oid
    assert fast.is_signature_valid(pki.issuing_cert.public_key())
    assert [entry.serial_number for entry in fast] == [entry.serial for entry in VARIED_ENTRIES]


def test_the_fast_encoder_matches_with_an_rsa_issuer(pki: Pki, rsa_key) -> None:
    from issuance.pki.profile import create_issuing_ca

    rsa_issuer = create_issuing_ca(
        rsa_key.public_key(),
        pki.root_cert,
        pki.root_key,
        "Kihonet RSA Issuing CA",
        "Kihonet Test",
        NOW - timedelta(days=1),
        365,
    )
    fast = build_crl(rsa_issuer, rsa_key, VARIED_ENTRIES, 3, NOW, NEXT)
    reference = reference_crl(rsa_issuer, rsa_key, VARIED_ENTRIES, 3)
    assert fast.tbs_certlist_bytes == reference.tbs_certlist_bytes
    assert fast.is_signature_valid(rsa_issuer.public_key())


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**159 - 1),
            st.datetimes(
                min_value=datetime(1970, 1, 1),
                max_value=datetime(9999, 12, 31),
                timezones=st.just(UTC),
            ),
            st.sampled_from(
                [
                    None,
                    *[
                        flag
                        for flag in REASONS.values()
                        if flag != x509.ReasonFlags.remove_from_crl
                    ],
                ]
            ),
        ),
        min_size=1,
        max_size=30,
    )
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_property_any_entries_encode_as_the_builder_does(pki: Pki, rows) -> None:
    entries = [RevokedEntry(*row) for row in rows]
    fast = build_crl(pki.issuing_cert, pki.issuing_key, entries, 9, NOW, NEXT)
    reference = reference_crl(pki.issuing_cert, pki.issuing_key, entries, 9)
    assert fast.tbs_certlist_bytes == reference.tbs_certlist_bytes


def test_an_empty_crl_has_no_revoked_list(pki: Pki) -> None:
    fast = build_crl(pki.issuing_cert, pki.issuing_key, [], 5, NOW, NEXT)
    reference = reference_crl(pki.issuing_cert, pki.issuing_key, [], 5)
    assert fast.tbs_certlist_bytes == reference.tbs_certlist_bytes
