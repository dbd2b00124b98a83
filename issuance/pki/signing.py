"""Signing certificates, CRLs and OCSP responses with a key of either store.

``cryptography``'s builders sign only with its own private key objects. A key in a PKCS#11 token
is a :class:`~issuance.pki.keys.TokenKey` instead, so for it the builder signs with a placeholder
key of the same type (its signature algorithm identifier is the same), and the signature is then
replaced by the token's over the very same to-be-signed bytes. Everything else in the DER comes
from ``cryptography`` either way, and the result is parsed again by it before it is used. A
``cryptography`` key (the file store) keeps the direct ``builder.sign`` path.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp as x509_ocsp

from . import der
from .keys import SigningKey, TokenKey

Builder = x509.CertificateBuilder | x509.CertificateRevocationListBuilder


def signature_hash_for(key: SigningKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for P-384 signing keys, SHA-256 for everything else."""
    curve = getattr(key, "curve", None)
    if isinstance(curve, ec.SECP384R1):
        return hashes.SHA384()
    return hashes.SHA256()


def sign_bytes(key: SigningKey, data: bytes) -> bytes:
    """The signature an X.509 builder makes over ``data`` (ECDSA or PKCS#1 v1.5)."""
    algorithm = signature_hash_for(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    if isinstance(key, TokenKey):
        return key.sign(data, algorithm)
    raise TypeError(f"unsupported CA key type {type(key).__name__}")


def sign(builder: Builder, key: SigningKey):
    """``builder.sign(key, ...)`` for either kind of key; returns what the builder returns."""
    drafted = draft(builder, key)
    if not isinstance(key, TokenKey):
        return drafted
    if isinstance(drafted, x509.Certificate):
        return x509.load_der_x509_certificate(_resign(key, _der(drafted)))
    if isinstance(drafted, x509.CertificateRevocationList):
        return x509.load_der_x509_crl(_resign(key, _der(drafted)))
    raise TypeError("OCSP responses are signed with sign_ocsp()")


def sign_ocsp(
    builder: x509_ocsp.OCSPResponseBuilder, key: SigningKey, responder: x509.Certificate
) -> x509_ocsp.OCSPResponse:
    """The builder with the responder ID (key hash) of ``responder``, signed by ``key``.

    ``cryptography`` insists that the responder certificate's key signs, so with a token key
    the draft names the placeholder's own certificate, and the responder ID is set to
    ``responder``'s key hash (RFC 6960 4.2.2.3: SHA-1 of its subjectPublicKey, the same as our
    SubjectKeyIdentifier) before the token signs."""
    if not isinstance(key, TokenKey):
        builder = builder.responder_id(x509_ocsp.OCSPResponderEncoding.HASH, responder)
        return builder.sign(key, signature_hash_for(key))
    placeholder = _placeholder(key)
    drafted = builder.responder_id(
        x509_ocsp.OCSPResponderEncoding.HASH, _placeholder_certificate(placeholder)
    ).sign(placeholder, signature_hash_for(key))
    key_hash = x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    responder_id = der.tlv(0xA2, der.tlv(der.OCTET_STRING, key_hash))  # byKey [2]
    return x509_ocsp.load_der_ocsp_response(_resign_ocsp(key, _der(drafted), responder_id))


def draft(builder: Builder, key: SigningKey):
    """Built and signed by ``key`` itself, or by the placeholder of a token key: for callers
    that take the to-be-signed bytes apart and sign them again (the CRL's entries)."""
    signer = _placeholder(key) if isinstance(key, TokenKey) else key
    return builder.sign(signer, signature_hash_for(key))


def _der(signed) -> bytes:
    return signed.public_bytes(serialization.Encoding.DER)


def _resign(key: SigningKey, encoded: bytes, tbs: bytes | None = None) -> bytes:
    """SEQUENCE { tbs, signatureAlgorithm, signature } with the signature made by ``key``
    (over ``tbs`` in place of the draft's when given); a certificate, a CRL and a
    BasicOCSPResponse (whose optional certs follow) share it."""
    drafted_tbs, algorithm, _, *rest = der.elements(encoded)
    tbs = tbs or drafted_tbs
    return der.sequence(tbs + algorithm + der.bit_string(sign_bytes(key, tbs)) + b"".join(rest))


OCSP_BASIC = bytes.fromhex("06092b0601050507300101")  # id-pkix-ocsp-basic


def _resign_ocsp(key: SigningKey, encoded: bytes, responder_id: bytes) -> bytes:
    """OCSPResponse { responseStatus, [0] EXPLICIT ResponseBytes { responseType, response
    OCTET STRING (BasicOCSPResponse) } } with the BasicOCSPResponse signed again, its
    ResponseData's responderID (the first element: cryptography writes no version) replaced."""
    status, explicit = der.elements(encoded)
    response_type, octets = der.elements(der.content(explicit))
    if response_type != OCSP_BASIC:
        raise ValueError("not a basic OCSP response")
    basic = der.content(octets)
    drafted_id, *response_data = der.elements(der.elements(basic)[0])
    if drafted_id[0] not in (0xA1, 0xA2):
        raise ValueError("unexpected ResponseData layout")
    basic = _resign(key, basic, der.sequence(responder_id + b"".join(response_data)))
    response_bytes = der.sequence(response_type + der.tlv(der.OCTET_STRING, basic))
    return der.sequence(status + der.tlv(0xA0, response_bytes))


_placeholders: dict[tuple[str, int], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] = {}
_placeholder_lock = threading.Lock()


def _placeholder(key: TokenKey) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A throwaway key, once per process, whose signature algorithm matches ``key``'s (any RSA
    size gives the same identifier; an EC curve fixes the hash). It never signs anything kept."""
    curve = key.curve
    slot = ("ec", curve.key_size) if curve is not None else ("rsa", 0)
    with _placeholder_lock:
        if slot not in _placeholders:
            _placeholders[slot] = (
                ec.generate_private_key(type(curve)())
                if curve is not None
                else rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )
        return _placeholders[slot]


_placeholder_certificates: dict[int, x509.Certificate] = {}


def _placeholder_certificate(
    placeholder: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> x509.Certificate:
    """A self-signed certificate of the placeholder key, only ever named in a draft."""
    with _placeholder_lock:
        if id(placeholder) not in _placeholder_certificates:
            name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "placeholder")])
            start = datetime(2000, 1, 1, tzinfo=UTC)
            builder = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(placeholder.public_key())
                .serial_number(1)
                .not_valid_before(start)
                .not_valid_after(start + timedelta(days=1))
            )
            _placeholder_certificates[id(placeholder)] = builder.sign(placeholder, hashes.SHA256())
        return _placeholder_certificates[id(placeholder)]
