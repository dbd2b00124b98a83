from __future__ import annotations

import os

import pytest
from cryptography import x509

from issuance.pki.keys import PrivateKey, generate_private_key
from issuance.pki.pop import sign_challenge, verify_challenge_signature
from tests.pki.conftest import Pki


@pytest.fixture(scope="module", params=["ec-p256", "ec-p384", "rsa"])
def holder(request: pytest.FixtureRequest, pki: Pki) -> tuple[PrivateKey, x509.Certificate]:
    if request.param == "rsa":
        key = request.getfixturevalue("rsa_key")
    else:
        key = generate_private_key(request.param)
    return key, pki.issue(key.public_key())


def test_good_signature(holder: tuple[PrivateKey, x509.Certificate]) -> None:
    key, cert = holder
    challenge = os.urandom(32)
    assert verify_challenge_signature(cert, challenge, sign_challenge(key, challenge))


def test_other_data_fails(holder: tuple[PrivateKey, x509.Certificate]) -> None:
    key, cert = holder
    signature = sign_challenge(key, b"challenge one")
    assert not verify_challenge_signature(cert, b"challenge two", signature)


def test_other_key_fails(holder: tuple[PrivateKey, x509.Certificate]) -> None:
    _, cert = holder
    challenge = os.urandom(32)
    for other in (generate_private_key("ec-p256"), generate_private_key("rsa-2048")):
        assert not verify_challenge_signature(cert, challenge, sign_challenge(other, challenge))


@pytest.mark.parametrize(
    "signature", [b"", b"\x00", b"garbage" * 40, os.urandom(512), "text", None]
)
def test_garbage_signature(holder: tuple[PrivateKey, x509.Certificate], signature: object) -> None:
    _, cert = holder
    assert verify_challenge_signature(cert, b"challenge", signature) is False  # type: ignore[arg-type]


def test_garbage_data_and_certificate(holder: tuple[PrivateKey, x509.Certificate]) -> None:
    key, cert = holder
    signature = sign_challenge(key, b"challenge")
    assert verify_challenge_signature(cert, None, signature) is False  # type: ignore[arg-type]
    assert verify_challenge_signature(None, b"challenge", signature) is False  # type: ignore[arg-type]


def test_sign_refuses_other_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(TypeError):
        sign_challenge(ed25519.Ed25519PrivateKey.generate(), b"x")  # type: ignore[arg-type]
