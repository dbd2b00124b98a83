"""Proof of possession of a certified key, used for renewals.

The server sends a random challenge, the client signs it with the key of its
current certificate: ECDSA with SHA-256 for EC keys, RSASSA-PKCS1-v1_5 with
SHA-256 for RSA keys. The client tool carries its own copy of
:func:`sign_challenge`, so keep it this small.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .keys import PrivateKey

_VERIFY_ERRORS = (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, AttributeError)


def sign_challenge(private_key: PrivateKey, data: bytes) -> bytes:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError("only EC and RSA keys can sign a challenge")


def verify_challenge_signature(
    certificate: x509.Certificate, data: bytes, signature: bytes
) -> bool:
    """True if ``signature`` over ``data`` verifies with the certificate's key; never raises."""
    try:
        public_key = certificate.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except _VERIFY_ERRORS:
        return False
    return True
