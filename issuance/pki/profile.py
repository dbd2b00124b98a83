"""Certificate profiles: the one place that decides every field and extension.

All certificates are X.509 v3 and conform to RFC 5280. Times are handled in
UTC with whole seconds (X.509 times carry no fractions).
"""

from __future__ import annotations

import calendar
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from .keys import PublicKey, SigningKey
from .signing import sign

COUNTRY = "JP"
# RFC 5280 Appendix A upper bounds (ub-common-name, ub-organization-name, ...).
MAX_NAME_ATTRIBUTE_LENGTH = 64
MAX_EMAIL_LENGTH = 254
SERIAL_BITS = 159


class ProfileError(ValueError):
    """A certificate cannot be built as asked. ``code`` is stable, the message English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- helpers


def utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC without microseconds; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def add_years(moment: datetime, years: int) -> datetime:
    """Same month, day and time ``years`` later; February 29 becomes February 28."""
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])
    return moment.replace(year=year, day=day)


def new_serial() -> int:
    """A random certificate serial number.

    158 bits come from :mod:`secrets` (far above the 64 bits of entropy that the
    CA/Browser Forum requires) and bit 158 is always set, so the number is
    positive, never zero, and its DER INTEGER is always exactly 20 octets (the
    RFC 5280 maximum): 159 significant bits plus the sign bit.
    """
    return secrets.randbits(SERIAL_BITS - 1) | (1 << (SERIAL_BITS - 1))


def spki_der(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_fingerprint(public_key: CertificatePublicKeyTypes) -> str:
    """Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def serial_hex(serial: int) -> str:
    """A serial number as the database stores it: upper-case hex, no leading zeros."""
    return format(serial, "X")


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the DER certificate."""
    return der_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def der_fingerprint(der: bytes) -> str:
    """:func:`certificate_fingerprint` of a certificate already in DER."""
    return hashlib.sha256(der).hexdigest()


def _check_public_key(public_key: object) -> None:
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ProfileError("key_type", "only EC and RSA public keys can be certified")


def check_issuer_key(issuer_cert: x509.Certificate, issuer_key: SigningKey) -> None:
    if spki_der(issuer_key.public_key()) != spki_der(issuer_cert.public_key()):
        raise ProfileError("issuer_key_mismatch", "the issuer key does not match its certificate")


def check_ocsp_responder(
    responder_cert: x509.Certificate, issuer_cert: x509.Certificate, responder_key: SigningKey
) -> None:
    """``responder_cert`` was issued by ``issuer_cert``'s subject and ``responder_key`` is its
    key (the signature itself is checked once, when the certificate is loaded)."""
    if responder_cert.issuer != issuer_cert.subject:
        raise ProfileError("responder_issuer", "the OCSP responder is not the CA's")
    check_issuer_key(responder_cert, responder_key)


def _check_attribute(label: str, value: str) -> None:
    if not value or not value.strip():
        raise ProfileError(f"empty_{label}", f"{label} must not be empty")
    if len(value) > MAX_NAME_ATTRIBUTE_LENGTH:
        raise ProfileError(
            f"long_{label}", f"{label} is longer than {MAX_NAME_ATTRIBUTE_LENGTH} characters"
        )
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ProfileError(f"invalid_{label}", f"{label} contains control characters")


def _check_email(email: str) -> None:
    local, at, domain = email.rpartition("@")
    valid = (
        email.isascii()
        and at == "@"
        and bool(local)
        and "." in domain
        and len(email) <= MAX_EMAIL_LENGTH
        and not any(char.isspace() or ord(char) < 0x20 for char in email)
    )
    if not valid:
        raise ProfileError("invalid_email", "the e-mail address is not a plain ASCII address")


def _ski(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def authority_key_identifier(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        # Our CAs' keys are EC or RSA (keys.KEY_TYPES), never X25519/X448.
        issuer_public_key = cast(PublicKey, issuer_cert.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_name(common_name: str, organization: str) -> x509.Name:
    _check_attribute("common_name", common_name)
    _check_attribute("organization", organization)
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _client_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
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


# ---------------------------------------------------------------- CA certificates


def create_root_ca(
    key: SigningKey,
    common_name: str,
    organization: str,
    not_before: datetime,
    days: int,
) -> x509.Certificate:
    """Self-signed root: CA=true (no path length limit), keyCertSign+cRLSign, SKI."""
    start = utc(not_before)
    name = _ca_name(common_name, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(digital_signature=False), critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
    )
    return sign(builder, key)


def create_issuing_ca(
    key_public: PublicKey,
    root_cert: x509.Certificate,
    root_key: SigningKey,
    common_name: str,
    organization: str,
    not_before: datetime,
    days: int,
) -> x509.Certificate:
    """Issuing CA under ``root_cert``: CA=true pathlen=0, keyCertSign+cRLSign+digitalSignature
    (the last one so that it signs OCSP responses itself), SKI, AKI.

    notAfter is clamped to the root's notAfter.
    """
    _check_public_key(key_public)
    check_issuer_key(root_cert, root_key)
    start = utc(not_before)
    end = min(start + timedelta(days=days), root_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(common_name, organization))
        .issuer_name(root_cert.subject)
        .public_key(key_public)
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(digital_signature=True), critical=True)
        .add_extension(_ski(key_public), critical=False)
        .add_extension(authority_key_identifier(root_cert), critical=False)
    )
    return sign(builder, root_key)


# ---------------------------------------------------------------- OCSP responder


def build_ocsp_responder_certificate(
    public_key: PublicKey,
    organization: str,
    not_before: datetime,
    lifetime: timedelta,
    issuer_cert: x509.Certificate,
    issuer_key: SigningKey,
) -> x509.Certificate:
    """A delegated OCSP responder (RFC 6960 4.2.2.2): EKU id-kp-OCSPSigning, KeyUsage
    digitalSignature (critical), id-pkix-ocsp-nocheck (4.2.2.2.1: clients do not check its
    revocation, hence its short life), CA=false, SKI, AKI. notAfter is clamped to the issuer's."""
    _check_public_key(public_key)
    check_issuer_key(issuer_cert, issuer_key)
    start = utc(not_before)
    end = min(start + lifetime, issuer_cert.not_valid_after_utc)
    if end <= start:
        raise ProfileError("issuer_expired", "the issuing CA expires before the responder starts")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(f"{organization} OCSP Responder", organization))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_client_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(authority_key_identifier(issuer_cert), critical=False)
    )
    return sign(builder, issuer_key)


# ---------------------------------------------------------------- client certificates


@dataclass(frozen=True)
class CaUrls:
    """Public URLs of the CA, all under ``base_url`` (a trailing slash is dropped)."""

    base_url: str

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ProfileError("invalid_url", "base_url must start with http:// or https://")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def crl_url(self) -> str:
        """DER CRL (CRLDistributionPoints)."""
        return f"{self.base_url}/pki/crl.der"

    @property
    def ocsp_url(self) -> str:
        """OCSP responder (AuthorityInformationAccess ocsp)."""
        return f"{self.base_url}/pki/ocsp"

    @property
    def ca_issuers_url(self) -> str:
        """Issuing CA certificate in DER, as RFC 5280 4.2.2.1 asks for caIssuers."""
        return f"{self.base_url}/pki/issuing-ca.der"

    @property
    def chain_url(self) -> str:
        """Issuing CA + root in PEM, for people installing the chain by hand."""
        return f"{self.base_url}/pki/ca.pem"


@dataclass(frozen=True)
class ClientSubject:
    user_id: str
    management_number: str
    kihonet_code: str
    email: str

    def __post_init__(self) -> None:
        _check_attribute("user_id", self.user_id)
        _check_attribute("management_number", self.management_number)
        _check_attribute("kihonet_code", self.kihonet_code)
        _check_attribute("common_name", self.common_name)
        _check_email(self.email)

    @property
    def common_name(self) -> str:
        return f"{self.user_id} {self.management_number}"

    def to_name(self, organization: str) -> x509.Name:
        """C=JP, O=<organization>, OU=<kihonet_code>, CN=<user_id> <management_number>."""
        _check_attribute("organization", organization)
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.kihonet_code),
                x509.NameAttribute(NameOID.COMMON_NAME, self.common_name),
            ]
        )


@dataclass(frozen=True)
class ClientCertificateProfile:
    organization: str
    urls: CaUrls
    validity_years: int = 3


def client_not_after(
    profile: ClientCertificateProfile, not_before: datetime, issuer_cert: x509.Certificate
) -> datetime:
    """notAfter of a client certificate starting at ``not_before``.

    It is the same calendar date and the same UTC time ``validity_years`` later
    (February 29 becomes February 28), e.g. 2025-04-01T10:00:00Z ->
    2028-04-01T10:00:00Z, with nothing subtracted. RFC 5280 counts notAfter as
    valid (inclusive), so the last valid second is exactly that instant. It is
    clamped to the issuer's notAfter, never later.
    """
    wanted = add_years(utc(not_before), profile.validity_years)
    return min(wanted, issuer_cert.not_valid_after_utc)


def build_client_certificate(
    profile: ClientCertificateProfile,
    public_key: PublicKey,
    subject: ClientSubject,
    serial: int,
    not_before: datetime,
    issuer_cert: x509.Certificate,
    issuer_key: SigningKey,
) -> x509.Certificate:
    """Client authentication certificate; nothing is taken from the CSR but its key.

    Extensions: BasicConstraints CA=false (critical), KeyUsage digitalSignature
    (critical), ExtendedKeyUsage clientAuth, SKI, AKI, SubjectAltName
    rfc822Name, CRLDistributionPoints and AuthorityInformationAccess (OCSP and
    caIssuers). See :func:`client_not_after` for the validity period.
    """
    _check_public_key(public_key)
    check_issuer_key(issuer_cert, issuer_key)
    if not 0 < serial < 2 ** (8 * 20 - 1):
        raise ProfileError("invalid_serial", "the serial must be positive and at most 20 octets")
    start = utc(not_before)
    end = client_not_after(profile, start, issuer_cert)
    if end <= start:
        raise ProfileError("issuer_expired", "the issuing CA expires before the certificate starts")
    urls = profile.urls
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject.to_name(profile.organization))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_client_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(authority_key_identifier(issuer_cert), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(subject.email)]), critical=False
        )
        .add_extension(_crl_distribution_points(urls.crl_url), critical=False)
        .add_extension(_authority_information_access(urls), critical=False)
    )
    return sign(builder, issuer_key)


def _crl_distribution_points(crl_url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def _authority_information_access(urls: CaUrls) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp_url)
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(urls.ca_issuers_url),
            ),
        ]
    )
