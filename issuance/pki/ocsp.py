"""OCSP (RFC 6960) requests and responses, signed by a delegated responder or the issuing CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from .crl import reason_extension
from .keys import SigningKey
from .profile import check_issuer_key, check_ocsp_responder, spki_der, utc
from .signing import sign_ocsp

CertStatus = Literal["good", "revoked", "unknown"]
# RFC 8954: a nonce of up to 32 octets is echoed; longer ones are left out of the response.
MAX_NONCE_BYTES = 32

# What cryptography may raise on hostile input (some are not ValueError subclasses).
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    NotImplementedError,
    OverflowError,
    x509.DuplicateExtension,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
)
_STATUSES: dict[str, x509_ocsp.OCSPCertStatus] = {
    "good": x509_ocsp.OCSPCertStatus.GOOD,
    "revoked": x509_ocsp.OCSPCertStatus.REVOKED,
    "unknown": x509_ocsp.OCSPCertStatus.UNKNOWN,
}


class OcspError(ValueError):
    """A request cannot be answered. ``code``: "malformed" or "unsupported_hash"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class OcspQuery:
    serial: int
    issuer_key_hash: bytes
    issuer_name_hash: bytes
    hash_algorithm: hashes.HashAlgorithm
    nonce: bytes | None
    request: x509_ocsp.OCSPRequest


def parse_ocsp_request(der: bytes) -> OcspQuery:
    """Decode a DER OCSPRequest with one certificate; raises only :class:`OcspError`."""
    if not isinstance(der, bytes) or not der:
        raise OcspError("malformed", "the OCSP request is empty")
    try:
        request = x509_ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        query = OcspQuery(
            serial=request.serial_number,
            issuer_key_hash=request.issuer_key_hash,
            issuer_name_hash=request.issuer_name_hash,
            hash_algorithm=algorithm,
            nonce=_nonce(request),
            request=request,
        )
    except UnsupportedAlgorithm:
        raise OcspError("unsupported_hash", "the OCSP request uses an unknown hash") from None
    except _PARSE_ERRORS:
        raise OcspError("malformed", "the OCSP request cannot be decoded") from None
    digest_size = algorithm.digest_size
    if len(query.issuer_key_hash) != digest_size or len(query.issuer_name_hash) != digest_size:
        raise OcspError("malformed", "the OCSP request hashes have the wrong length")
    return query


def _nonce(request: x509_ocsp.OCSPRequest) -> bytes | None:
    try:
        extension = request.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return None
    return extension.value.nonce


def matches_issuer(query: OcspQuery, issuer_cert: x509.Certificate) -> bool:
    """True when the request's CertID names ``issuer_cert`` (name and key hash)."""
    name_hash, key_hash = issuer_hashes(issuer_cert, query.hash_algorithm)
    return name_hash == query.issuer_name_hash and key_hash == query.issuer_key_hash


def issuer_hashes(
    issuer_cert: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of RFC 6960 4.1.1 for ``issuer_cert``."""
    name_hash = _digest(algorithm, issuer_cert.subject.public_bytes())
    key_hash = _digest(algorithm, _subject_public_key_bits(spki_der(issuer_cert.public_key())))
    return name_hash, key_hash


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _read_header(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER TLV at ``offset``."""
    tag, first = der[offset], der[offset + 1]
    offset += 2
    if first < 0x80:
        return tag, offset, offset + first
    count = first & 0x7F
    length = int.from_bytes(der[offset : offset + count], "big")
    offset += count
    return tag, offset, offset + length


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING value (without its unused-bits octet)."""
    _, content, _ = _read_header(spki, 0)  # SubjectPublicKeyInfo SEQUENCE
    _, _, algorithm_end = _read_header(spki, content)  # AlgorithmIdentifier
    tag, bits_start, bits_end = _read_header(spki, algorithm_end)
    if tag != 0x03:
        raise ValueError("SubjectPublicKeyInfo without a BIT STRING")
    return spki[bits_start + 1 : bits_end]


def build_ocsp_response(
    query: OcspQuery,
    issuer_cert: x509.Certificate,
    signing_key: SigningKey,
    status: CertStatus,
    *,
    this_update: datetime,
    next_update: datetime | None,
    revoked_at: datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    cert: x509.Certificate | None = None,
    responder_cert: x509.Certificate | None = None,
) -> bytes:
    """A successful, DER-encoded BasicOCSPResponse.

    Signed by ``signing_key``: the key of ``responder_cert``, a delegated responder certificate
    the issuing CA issued (RFC 6960 4.2.2.2, sent along in ``certs``), or without one the
    issuing CA's own key. The responder ID is the signer's key hash. The CertID is echoed from
    the request (same hash algorithm), so "unknown" works without a certificate; ``cert``,
    when given, must carry the queried serial. The nonce is echoed when it has 1 to 32 octets
    (RFC 8954). A reason of "unspecified" is left out. The caller must first check
    :func:`matches_issuer` (else ValueError).
    """
    if status not in _STATUSES:
        raise ValueError(f"unknown OCSP status {status!r}")
    if status == "revoked" and revoked_at is None:
        raise ValueError("a revoked status needs revoked_at")
    if cert is not None and cert.serial_number != query.serial:
        raise ValueError("the certificate does not have the queried serial number")
    if not matches_issuer(query, issuer_cert):
        raise ValueError("the request is not for this issuer")
    if responder_cert is None:
        check_issuer_key(issuer_cert, signing_key)
    else:
        check_ocsp_responder(responder_cert, issuer_cert, signing_key)
    revoked = status == "revoked"
    builder = x509_ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=query.issuer_name_hash,
        issuer_key_hash=query.issuer_key_hash,
        serial_number=query.serial,
        algorithm=query.hash_algorithm,
        cert_status=_STATUSES[status],
        this_update=utc(this_update),
        next_update=None if next_update is None else utc(next_update),
        revocation_time=utc(revoked_at) if revoked and revoked_at else None,
        revocation_reason=_ocsp_reason(reason) if revoked else None,
    )
    if responder_cert is not None:
        builder = builder.certificates([responder_cert])
    if query.nonce and len(query.nonce) <= MAX_NONCE_BYTES:
        builder = builder.add_extension(x509.OCSPNonce(query.nonce), critical=False)
    response = sign_ocsp(builder, signing_key, responder_cert or issuer_cert)
    return response.public_bytes(serialization.Encoding.DER)


def _ocsp_reason(reason: x509.ReasonFlags | None) -> x509.ReasonFlags | None:
    extension = reason_extension(reason)
    return None if extension is None else extension.reason


def _unsuccessful(status: x509_ocsp.OCSPResponseStatus) -> bytes:
    response = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)


def malformed_request_response() -> bytes:
    return _unsuccessful(x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def unauthorized_response() -> bytes:
    """For requests about certificates of another CA (RFC 6960 2.3)."""
    return _unsuccessful(x509_ocsp.OCSPResponseStatus.UNAUTHORIZED)


def try_later_response() -> bytes:
    """For a responder that cannot sign for now (RFC 6960 2.3: tryLater)."""
    return _unsuccessful(x509_ocsp.OCSPResponseStatus.TRY_LATER)


def internal_error_response() -> bytes:
    return _unsuccessful(x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR)
