from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issuance.pki.csr import ERROR_CODES, MAX_CSR_BYTES, CsrError, check_csr
from issuance.pki.keys import generate_private_key
from tests.pki.conftest import make_csr, pem

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def ec_csr_der() -> bytes:
    return make_csr(generate_private_key("ec-p256"))


def to_pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> str:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


def error_code(data: bytes | str) -> str:
    with pytest.raises(CsrError) as info:
        check_csr(data)
    assert info.value.code in ERROR_CODES
    return info.value.code


# ------------------------------------------------------------------ accepted input


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048"])
def test_accepts_der_and_pem(key_type: str) -> None:
    key = generate_private_key(key_type)
    der = make_csr(key)
    for data in (der, to_pem(der), to_pem(der).encode(), to_pem(der, "NEW CERTIFICATE REQUEST")):
        csr = check_csr(data)
        assert csr.public_key() == key.public_key()


def test_accepts_pem_with_text_around(ec_csr_der: bytes) -> None:
    text = "Certificate Request:\n  Data: ...\n" + to_pem(ec_csr_der) + "\ntrailing\n"
    assert check_csr(text).public_bytes(serialization.Encoding.DER) == ec_csr_der


def test_accepts_rsa_4096_boundary() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    check_csr(make_csr(key))


# ------------------------------------------------------------------ each error code


def test_too_large(ec_csr_der: bytes) -> None:
    padded = to_pem(ec_csr_der) + " " * MAX_CSR_BYTES
    assert error_code(padded) == "too_large"
    assert error_code(padded.encode()) == "too_large"
    assert error_code(b"\x30" * (MAX_CSR_BYTES + 1)) == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "",
        b"   \n",
        b"garbage",
        "こんにちは",
        b"\x30\x03\x02\x01\x01",
        b"\x00\xff" * 100,
        "-----BEGIN CERTIFICATE REQUEST-----\nnot base64!!\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n",
        "\ud800",
    ],
)
def test_malformed(data: bytes | str) -> None:
    assert error_code(data) == "malformed"


def test_malformed_truncated_der(ec_csr_der: bytes) -> None:
    assert error_code(ec_csr_der[:-10]) == "malformed"
    assert error_code(to_pem(ec_csr_der[:-10])) == "malformed"


@pytest.mark.parametrize("data", [None, 12, ["-----BEGIN"]])
def test_malformed_not_text(data: object) -> None:
    assert error_code(data) == "malformed"  # type: ignore[arg-type]


def test_wrong_pem_type_certificate(client_cert: x509.Certificate) -> None:
    assert error_code(pem(client_cert)) == "wrong_pem_type"
    assert error_code(pem(client_cert).decode()) == "wrong_pem_type"


def test_wrong_pem_type_private_key() -> None:
    key = generate_private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert error_code(private_pem) == "wrong_pem_type"
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert error_code(public_pem) == "wrong_pem_type"


def test_certificate_der_is_malformed(client_cert: x509.Certificate) -> None:
    assert error_code(client_cert.public_bytes(serialization.Encoding.DER)) == "malformed"


def test_bad_signature(ec_csr_der: bytes) -> None:
    tampered = bytearray(ec_csr_der)
    tampered[-5] ^= 0x01  # inside the ECDSA signature value
    assert error_code(bytes(tampered)) == "bad_signature"


def test_bad_signature_other_subject(rsa_key: rsa.RSAPrivateKey) -> None:
    """A signature taken from another CSR does not verify over this one's content."""
    key = rsa_key
    one = make_csr(key, common_name="one")
    two = make_csr(key, common_name="two")
    assert len(one) == len(two)
    signature = x509.load_der_x509_csr(two).signature
    swapped = one.replace(x509.load_der_x509_csr(one).signature, signature)
    assert error_code(swapped) == "bad_signature"


def test_key_type_ed25519() -> None:
    assert error_code(make_csr(ed25519.Ed25519PrivateKey.generate())) == "key_type"


def test_key_type_dsa() -> None:
    assert error_code(make_csr(dsa.generate_private_key(2048))) == "key_type"


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP521R1(), ec.BrainpoolP256R1()])
def test_key_type_other_curves(curve: ec.EllipticCurve) -> None:
    assert error_code(make_csr(ec.generate_private_key(curve))) == "key_type"


def test_key_size_too_small() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert error_code(make_csr(key)) == "key_size"


def test_key_size_too_large() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4104)
    assert error_code(make_csr(key)) == "key_size"


@pytest.mark.parametrize("exponent", [3])
def test_rsa_public_exponent_other_than_65537_is_refused(exponent: int) -> None:
    key = rsa.generate_private_key(public_exponent=exponent, key_size=2048)
    assert error_code(make_csr(key)) == "key_exponent"


# ------------------------------------------------------------------ properties


def only_csr_error(data: bytes | str) -> None:
    try:
        check_csr(data)
    except CsrError as error:
        assert error.code in ERROR_CODES


@PROPERTY_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    only_csr_error(data)


@PROPERTY_SETTINGS
@given(st.text(max_size=2048))
def test_random_text(data: str) -> None:
    only_csr_error(data)


@PROPERTY_SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_in_pem_armour(data: bytes) -> None:
    only_csr_error(to_pem(data))
    only_csr_error(b"\x30" + data)


def mutate(der: bytes, data: st.DataObject) -> bytes:
    mutated = bytearray(der)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        last = max(len(mutated) - 1, 0)
        # Half of the edits hit the headers (lengths, version), where parsers differ most.
        position = data.draw(
            st.one_of(st.integers(min_value=0, max_value=min(last, 24)), st.integers(0, last))
        )
        if kind == "flip" and mutated:
            mutated[position] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif kind == "set" and mutated:
            mutated[position] = data.draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif mutated:
            del mutated[position : position + data.draw(st.integers(min_value=1, max_value=8))]
    return bytes(mutated)


@pytest.fixture(scope="module")
def sample_csrs() -> list[bytes]:
    return [
        make_csr(generate_private_key("ec-p256")),
        make_csr(generate_private_key("rsa-2048")),
        make_csr(ed25519.Ed25519PrivateKey.generate()),
    ]


@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_csrs(sample_csrs: list[bytes], data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(sample_csrs))
    mutated = mutate(original, data)
    only_csr_error(mutated)
    only_csr_error(to_pem(mutated))
    only_csr_error(to_pem(mutated).encode())


@pytest.mark.parametrize("version", [1, 2, 0x40, 0xFF])
def test_invalid_csr_version_is_malformed(ec_csr_der: bytes, version: int) -> None:
    """cryptography raises InvalidVersion (not a ValueError) for these."""
    position = ec_csr_der.index(b"\x02\x01\x00") + 2
    changed = ec_csr_der[:position] + bytes([version]) + ec_csr_der[position + 1 :]
    assert error_code(changed) == "malformed"
    assert error_code(to_pem(changed)) == "malformed"
