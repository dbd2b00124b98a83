"""Checks on certificate signing requests (PKCS#10) sent by users.

Only the public key of a CSR is used: its subject and extensions are ignored
(the certificate profile sets them), so they are not inspected here.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

MAX_CSR_BYTES = 16384
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
# The only RSA public exponent accepted (CA/Browser Forum practice): e = 3 and other small
# exponents make some padding mistakes exploitable.
RSA_PUBLIC_EXPONENT = 65537
ALLOWED_CURVES: tuple[type[ec.EllipticCurve], ...] = (ec.SECP256R1, ec.SECP384R1)
CSR_PEM_LABELS = frozenset({b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"})

ERROR_CODES = (
    "too_large",
    "malformed",
    "wrong_pem_type",
    "bad_signature",
    "key_type",
    "key_size",
    "key_exponent",
)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\r\n-]{1,64})-----.*?-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([^\r\n-]{1,64})-----")
# What cryptography may raise on hostile input; anything else would be a bug.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    NotImplementedError,
    OverflowError,
    x509.InvalidVersion,
)


class CsrError(ValueError):
    """A CSR is refused. ``code`` is one of :data:`ERROR_CODES`; the message is English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PEM (str or bytes) or DER CSR and check its key and signature.

    Raises only :class:`CsrError`, whatever the input.
    """
    raw = _to_bytes(data)
    csr = _load(raw)
    _check_public_key(csr)
    _check_signature(csr)
    return csr


def _to_bytes(data: object) -> bytes:
    if isinstance(data, str):
        if len(data) > MAX_CSR_BYTES:
            raise _too_large()
        try:
            data = data.encode("utf-8")
        except UnicodeError:
            raise CsrError("malformed", "the CSR text cannot be encoded") from None
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CsrError("malformed", "the CSR must be text or bytes")
    raw = bytes(data)
    if len(raw) > MAX_CSR_BYTES:
        raise _too_large()
    if not raw.strip():
        raise CsrError("malformed", "the CSR is empty")
    return raw


def _too_large() -> CsrError:
    return CsrError("too_large", f"the CSR is larger than {MAX_CSR_BYTES} bytes")


def _load(raw: bytes) -> x509.CertificateSigningRequest:
    if raw.startswith(b"\x30"):
        csr = _load_der(raw)
        if csr is not None:
            return csr
    begin = _PEM_BEGIN.search(raw)
    if begin is None:
        raise CsrError("malformed", "the CSR is neither PEM nor DER")
    if begin.group(1) not in CSR_PEM_LABELS:
        label = begin.group(1).decode("ascii", "replace")
        raise CsrError("wrong_pem_type", f"expected a CERTIFICATE REQUEST, got a PEM {label}")
    return _load_pem(raw, begin.start())


def _load_der(raw: bytes) -> x509.CertificateSigningRequest | None:
    try:
        return x509.load_der_x509_csr(raw)
    except _PARSE_ERRORS:
        return None


def _load_pem(raw: bytes, start: int) -> x509.CertificateSigningRequest:
    block = _PEM_BLOCK.match(raw, start)
    if block is None:
        raise CsrError("malformed", "the PEM CSR has no matching END line")
    try:
        return x509.load_pem_x509_csr(block.group(0))
    except _PARSE_ERRORS:
        raise CsrError("malformed", "the PEM CSR cannot be decoded") from None


def _check_public_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except UnsupportedAlgorithm:
        raise CsrError("key_type", "the CSR key type is not supported") from None
    except _PARSE_ERRORS:
        raise CsrError("malformed", "the CSR public key cannot be decoded") from None
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise CsrError(
                "key_size",
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {key.key_size}",
            )
        exponent = key.public_numbers().e
        if exponent != RSA_PUBLIC_EXPONENT:
            raise CsrError(
                "key_exponent",
                f"the RSA public exponent must be {RSA_PUBLIC_EXPONENT}, not {exponent}",
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ALLOWED_CURVES):
        return
    raise CsrError("key_type", "only RSA and EC P-256 / P-384 keys are accepted")


def _check_signature(csr: x509.CertificateSigningRequest) -> None:
    try:
        valid = csr.is_signature_valid
    except _PARSE_ERRORS:
        valid = False
    if not valid:
        raise CsrError("bad_signature", "the CSR signature does not verify")
