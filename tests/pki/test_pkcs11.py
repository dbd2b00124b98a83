"""The PKCS#11 key store on a throwaway SoftHSM2 token: key types, signatures that
``cryptography`` and openssl accept, no overwriting, reconnecting, no PIN in any error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp as x509_ocsp

from issuance.pki import pkcs11 as ca_pkcs11
from issuance.pki.crl import RevokedEntry, build_crl
from issuance.pki.keys import KeyNotFoundError, KeyStoreError, TokenUnavailableError
from issuance.pki.ocsp import build_ocsp_response, parse_ocsp_request
from issuance.pki.profile import create_root_ca

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(make_token):
    token = make_token("kihonet-pkcs11")
    store = ca_pkcs11.Pkcs11KeyStore(token.module, token.label, token.pin, {"root": "my-root"})
    yield store
    store.close()


def verify(public_key, signature: bytes, data: bytes, algorithm) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [("ec-p256", hashes.SHA256), ("ec-p384", hashes.SHA384), ("rsa-2048", hashes.SHA256)],
)
def test_pkcs11_keys_sign_certificates_crls_and_ocsp(store, key_type, algorithm) -> None:
    key = store.generate("root", key_type)
    assert store.exists("root") and store.label_for("root") == "my-root"
    cert = create_root_ca(key, "Token Root", "Kihonet Test", NOW, 30)
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, algorithm)
    cert.verify_directly_issued_by(cert)

    crl = build_crl(cert, key, [RevokedEntry(7, NOW)], 1, NOW, NOW + timedelta(days=1))
    assert crl.is_signature_valid(key.public_key())
    empty = build_crl(cert, key, [], 2, NOW, NOW + timedelta(days=1))
    assert empty.is_signature_valid(key.public_key())

    request = x509_ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA1())
    query = parse_ocsp_request(request.build().public_bytes(serialization.Encoding.DER))
    response = x509_ocsp.load_der_ocsp_response(
        build_ocsp_response(
            query, cert, key, "good", this_update=NOW, next_update=NOW + timedelta(hours=1)
        )
    )
    verify(key.public_key(), response.signature, response.tbs_response_bytes, algorithm())
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert response.responder_key_hash == ski.digest

    again = store.load("root")  # found again by its label, same public key
    assert again.public_key() == key.public_key()


def test_pkcs11_generate_never_overwrites(store) -> None:
    store.generate("root")
    with pytest.raises(KeyStoreError, match="never overwritten") as raised:
        store.generate("root", "ec-p384")
    assert raised.value.code == "key_exists"
    with pytest.raises(KeyNotFoundError):
        store.load("issuing")
    with pytest.raises(KeyStoreError, match="never imported"):
        store.save("issuing", ec.generate_private_key(ec.SECP256R1()))


# The search python-pkcs11 starts on the dead session says so again when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pkcs11_session_survives_a_token_reset(store) -> None:
    key = store.generate("root")
    session = store.session()
    ca_pkcs11.library(store.module).reinitialize()  # every session handle becomes invalid
    signature = key.sign(b"after the reset", hashes.SHA256())
    verify(key.public_key(), signature, b"after the reset", hashes.SHA256())
    assert store.session() is not session


def test_pkcs11_wrong_pin_or_token_never_shows_the_pin(make_token) -> None:
    token = make_token("kihonet-pin")
    wrong = ca_pkcs11.Pkcs11KeyStore(token.module, token.label, "not-the-pin-0815")
    with pytest.raises(TokenUnavailableError) as raised:
        wrong.exists("root")
    assert raised.value.code == "pin" and "not-the-pin-0815" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no chained detail
    missing = ca_pkcs11.Pkcs11KeyStore(token.module, "no-such-token", token.pin)
    with pytest.raises(TokenUnavailableError, match="no token labelled 'no-such-token'") as gone:
        missing.load("root")
    assert token.pin not in str(gone.value)
