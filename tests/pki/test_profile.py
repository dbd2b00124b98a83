from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from issuance.pki.crl import RevokedEntry, build_crl, crl_to_pem, reason_from_name
from issuance.pki.csr import check_csr
from issuance.pki.keys import generate_private_key
from issuance.pki.profile import (
    CaUrls,
    ClientSubject,
    ProfileError,
    add_years,
    build_client_certificate,
    certificate_fingerprint,
    client_not_after,
    create_issuing_ca,
    new_serial,
    public_key_fingerprint,
)
from tests.pki.conftest import ORGANIZATION, SUBJECT, Pki, der, make_csr, pem, run_openssl


def extension(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        (datetime(2025, 4, 1, 10, 0, 0, tzinfo=UTC), 3, datetime(2028, 4, 1, 10, 0, 0, tzinfo=UTC)),
        (datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), 3, datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)),
        (datetime(2024, 2, 29, 0, 0, tzinfo=UTC), 4, datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        (datetime(2025, 12, 31, 15, 0, tzinfo=UTC), 3, datetime(2028, 12, 31, 15, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_add_years(start: datetime, years: int, expected: datetime) -> None:
    assert add_years(start, years) == expected


def test_new_serial_is_positive_20_octets() -> None:
    serials = {new_serial() for _ in range(2000)}
    assert len(serials) == 2000
    for serial in serials:
        assert 0 < serial < 2**159
        assert serial.bit_length() == 159  # DER: 20 octets with a clear sign bit


def test_ca_urls_strip_trailing_slash() -> None:
    urls = CaUrls("https://ca.example.jp/base/")
    assert urls.base_url == "https://ca.example.jp/base"
    assert urls.crl_url == "https://ca.example.jp/base/pki/crl.der"
    assert urls.ocsp_url == "https://ca.example.jp/base/pki/ocsp"
    assert urls.ca_issuers_url == "https://ca.example.jp/base/pki/issuing-ca.der"
    assert urls.chain_url == "https://ca.example.jp/base/pki/ca.pem"
    with pytest.raises(ProfileError):
        CaUrls("ftp://ca.example.jp")


def test_fingerprints(client_cert: x509.Certificate) -> None:
    spki = client_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_fingerprint(client_cert.public_key()) == hashlib.sha256(spki).hexdigest()
    assert certificate_fingerprint(client_cert) == hashlib.sha256(der(client_cert)).hexdigest()
    assert len(certificate_fingerprint(client_cert)) == 64


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"user_id": ""}, "empty_user_id"),
        ({"kihonet_code": "   "}, "empty_kihonet_code"),
        ({"management_number": "x" * 65}, "long_management_number"),
        ({"user_id": "a" * 40, "management_number": "b" * 40}, "long_common_name"),
        ({"user_id": "bad\nname"}, "invalid_user_id"),
        ({"email": "no-at-sign"}, "invalid_email"),
        ({"email": "山田@example.jp"}, "invalid_email"),
        ({"email": "a b@example.jp"}, "invalid_email"),
    ],
)
def test_client_subject_validation(changes: dict[str, str], code: str) -> None:
    values = {
        "user_id": "u1",
        "management_number": "M1",
        "kihonet_code": "K1",
        "email": "a@example.jp",
        **changes,
    }
    with pytest.raises(ProfileError) as info:
        ClientSubject(**values)
    assert info.value.code == code


# ------------------------------------------------------------------ CA certificates


def test_root_ca(pki: Pki) -> None:
    root = pki.root_cert
    assert root.version == x509.Version.v3
    assert root.subject == root.issuer
    assert root.subject.rfc4514_string() == f"CN=Kihonet Test Root CA,O={ORGANIZATION},C=JP"
    basic = extension(root, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length is None
    usage = extension(root, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert extension(root, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(pki.root_key.public_key())
    )
    root.verify_directly_issued_by(root)


def test_issuing_ca(pki: Pki) -> None:
    issuing = pki.issuing_cert
    assert issuing.issuer == pki.root_cert.subject
    basic = extension(issuing, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = extension(issuing, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign and usage.value.digital_signature
    aki = extension(issuing, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == extension(pki.root_cert, x509.SubjectKeyIdentifier).value.digest
    issuing.verify_directly_issued_by(pki.root_cert)


def test_issuing_ca_clamped_to_root(pki: Pki) -> None:
    issuing = create_issuing_ca(
        generate_private_key().public_key(),
        pki.root_cert,
        pki.root_key,
        "Long CA",
        ORGANIZATION,
        datetime.now(UTC),
        100_000,
    )
    assert issuing.not_valid_after_utc == pki.root_cert.not_valid_after_utc


def test_issuer_key_must_match(pki: Pki) -> None:
    with pytest.raises(ProfileError) as info:
        build_client_certificate(
            pki.profile,
            generate_private_key().public_key(),
            SUBJECT,
            new_serial(),
            datetime.now(UTC),
            pki.issuing_cert,
            pki.root_key,
        )
    assert info.value.code == "issuer_key_mismatch"


# ------------------------------------------------------------------ client certificates


def test_client_certificate_extensions(pki: Pki, client_cert: x509.Certificate) -> None:
    cert = client_cert
    assert cert.version == x509.Version.v3
    assert cert.issuer == pki.issuing_cert.subject
    assert len(cert.extensions) == 8

    basic = extension(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False and basic.value.path_length is None

    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )

    eku = extension(cert, x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    ski = extension(cert, x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())

    aki = extension(cert, x509.AuthorityKeyIdentifier)
    issuer_ski = extension(pki.issuing_cert, x509.SubjectKeyIdentifier).value
    assert not aki.critical and aki.value.key_identifier == issuer_ski.digest

    san = extension(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.RFC822Name) == [SUBJECT.email]
    assert len(san.value) == 1

    crl_dp = extension(cert, x509.CRLDistributionPoints)
    assert not crl_dp.critical
    assert [point.full_name for point in crl_dp.value] == [
        [x509.UniformResourceIdentifier("http://ca.example.jp/pki/crl.der")]
    ]

    aia = extension(cert, x509.AuthorityInformationAccess)
    assert not aia.critical
    assert [(d.access_method, d.access_location.value) for d in aia.value] == [
        (AuthorityInformationAccessOID.OCSP, "http://ca.example.jp/pki/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, "http://ca.example.jp/pki/issuing-ca.der"),
    ]
    cert.verify_directly_issued_by(pki.issuing_cert)


def test_subject_comes_from_profile_not_csr(pki: Pki) -> None:
    key = generate_private_key()
    csr = check_csr(make_csr(key, common_name="admin", email="evil@evil.test"))
    cert = pki.issue(csr.public_key())
    assert cert.subject == x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "K9876"),
            x509.NameAttribute(NameOID.COMMON_NAME, "u12345 M-0001"),
        ]
    )
    assert cert.subject.rfc4514_string() == f"CN=u12345 M-0001,OU=K9876,O={ORGANIZATION},C=JP"
    san = extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["taro.yamada@example.co.jp"]
    assert public_key_fingerprint(cert.public_key()) == public_key_fingerprint(key.public_key())


def test_serial_is_kept(pki: Pki, client_key) -> None:
    serial = new_serial()
    cert = build_client_certificate(
        pki.profile,
        client_key.public_key(),
        SUBJECT,
        serial,
        datetime.now(UTC),
        pki.issuing_cert,
        pki.issuing_key,
    )
    assert cert.serial_number == serial
    for bad in (0, -1, 2**159):
        with pytest.raises(ProfileError):
            build_client_certificate(
                pki.profile,
                client_key.public_key(),
                SUBJECT,
                bad,
                datetime.now(UTC),
                pki.issuing_cert,
                pki.issuing_key,
            )


def test_validity_is_exactly_three_years(pki: Pki, client_key) -> None:
    jst = timezone(timedelta(hours=9))
    start = datetime.now(jst).replace(microsecond=123456)
    cert = pki.issue(client_key.public_key(), not_before=start)
    expected_start = start.astimezone(UTC).replace(microsecond=0)
    assert cert.not_valid_before_utc == expected_start
    assert cert.not_valid_after_utc == add_years(expected_start, 3)


def test_validity_from_february_29(pki: Pki) -> None:
    start = datetime(2028, 2, 29, 12, 30, tzinfo=UTC)
    end = client_not_after(pki.profile, start, pki.issuing_cert)
    assert end == datetime(2031, 2, 28, 12, 30, tzinfo=UTC)


def test_validity_clamped_to_issuer(pki: Pki, client_key) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    short_key = generate_private_key()
    short_ca = create_issuing_ca(
        short_key.public_key(), pki.root_cert, pki.root_key, "Short CA", ORGANIZATION, now, 30
    )
    cert = build_client_certificate(
        pki.profile, client_key.public_key(), SUBJECT, new_serial(), now, short_ca, short_key
    )
    assert cert.not_valid_after_utc == short_ca.not_valid_after_utc == now + timedelta(days=30)
    with pytest.raises(ProfileError) as info:
        build_client_certificate(
            pki.profile,
            client_key.public_key(),
            SUBJECT,
            new_serial(),
            now + timedelta(days=31),
            short_ca,
            short_key,
        )
    assert info.value.code == "issuer_expired"


def test_naive_datetime_refused(pki: Pki, client_key) -> None:
    with pytest.raises(ValueError, match="timezone"):
        pki.issue(client_key.public_key(), not_before=datetime(2025, 1, 1))


def test_rsa_and_p384_client_keys(pki: Pki, rsa_key) -> None:
    for key in (rsa_key, generate_private_key("ec-p384")):
        cert = pki.issue(key.public_key())
        cert.verify_directly_issued_by(pki.issuing_cert)


# ------------------------------------------------------------------ real openssl


def test_openssl_verify_sslclient(pki: Pki, client_cert: x509.Certificate, rsa_key) -> None:
    for name, cert in [("client.pem", client_cert), ("rsa.pem", pki.issue(rsa_key.public_key()))]:
        path = pki.write(name, pem(cert))
        result = run_openssl(
            "verify", "-purpose", "sslclient", "-CAfile", pki.directory / "chain.pem", path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == f"{path}: OK"


def test_openssl_verify_with_crl(pki: Pki, client_key) -> None:
    cert = pki.issue(client_key.public_key())
    cert_path = pki.write("crl-client.pem", pem(cert))
    now = datetime.now(UTC)
    revoked = build_crl(
        pki.issuing_cert,
        pki.issuing_key,
        [RevokedEntry(cert.serial_number, now - timedelta(minutes=1), reason_from_name("keyCompromise"))],
        2,
        now - timedelta(minutes=1),
        now + timedelta(days=1),
    )  # fmt: skip
    empty = build_crl(
        pki.issuing_cert,
        pki.issuing_key,
        [],
        3,
        now - timedelta(minutes=1),
        now + timedelta(days=1),
    )
    chain = pki.directory / "chain.pem"
    revoked_path = pki.write("revoked.crl.pem", crl_to_pem(revoked))
    empty_path = pki.write("empty.crl.pem", crl_to_pem(empty))

    result = run_openssl(
        "verify", "-purpose", "sslclient", "-crl_check", "-CAfile", chain, "-CRLfile",
        revoked_path, cert_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr

    result = run_openssl(
        "verify", "-purpose", "sslclient", "-crl_check", "-CAfile", chain, "-CRLfile",
        empty_path, cert_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{cert_path}: OK"
