from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from issuance.pki.keys import (
    EncryptedFileKeyStore,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    PassphraseError,
    generate_private_key,
)
from issuance.pki.profile import public_key_fingerprint

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture
def store(tmp_path: Path) -> EncryptedFileKeyStore:
    return EncryptedFileKeyStore(tmp_path / "keys", PASSPHRASE)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("key_type", "cls", "detail"),
    [
        ("ec-p256", ec.EllipticCurvePrivateKey, "secp256r1"),
        ("ec-p384", ec.EllipticCurvePrivateKey, "secp384r1"),
        ("rsa-2048", rsa.RSAPrivateKey, 2048),
        ("rsa-3072", rsa.RSAPrivateKey, 3072),
    ],
)
def test_generate_private_key(key_type: str, cls: type, detail: object) -> None:
    key = generate_private_key(key_type)
    assert isinstance(key, cls)
    assert (key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else key.key_size) == (
        detail
    )


def test_default_key_type_is_p256() -> None:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)


@pytest.mark.parametrize("key_type", ["ed25519", "rsa-1024", "", "EC-P256"])
def test_unknown_key_type(key_type: str) -> None:
    with pytest.raises(ValueError, match="unknown key type"):
        generate_private_key(key_type)


def test_store_satisfies_protocol(store: EncryptedFileKeyStore) -> None:
    as_protocol: KeyStore = store
    assert not as_protocol.exists("issuing-ca")


def test_round_trip(store: EncryptedFileKeyStore, key: ec.EllipticCurvePrivateKey) -> None:
    store.save("issuing-ca", key)
    assert store.exists("issuing-ca")
    loaded = store.load("issuing-ca")
    assert public_key_fingerprint(loaded.public_key()) == public_key_fingerprint(key.public_key())


def test_round_trip_rsa(tmp_path: Path) -> None:
    key = generate_private_key("rsa-2048")
    store = EncryptedFileKeyStore(tmp_path, PASSPHRASE)
    store.save("rsa", key)
    assert store.load("rsa").private_numbers() == key.private_numbers()


def test_file_is_encrypted_pkcs8_with_mode_0600(
    store: EncryptedFileKeyStore, key: ec.EllipticCurvePrivateKey
) -> None:
    store.save("root-ca", key)
    path = store.directory / "root-ca.key.pem"
    text = path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "ENCRYPTED PRIVATE KEY" in text
    assert mode(path) == 0o600
    assert mode(store.directory) == 0o700


def test_wrong_passphrase(store: EncryptedFileKeyStore, key: ec.EllipticCurvePrivateKey) -> None:
    store.save("issuing-ca", key)
    wrong = EncryptedFileKeyStore(store.directory, b"not the passphrase")
    with pytest.raises(PassphraseError) as info:
        wrong.load("issuing-ca")
    assert info.value.code == "passphrase"
    assert isinstance(info.value, KeyStoreError)
    assert "passphrase" in str(info.value)
    assert "not the passphrase" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("passphrase", [b"", None, "text"])
def test_empty_or_missing_passphrase_refused(tmp_path: Path, passphrase: object) -> None:
    with pytest.raises(PassphraseError):
        EncryptedFileKeyStore(tmp_path, passphrase)  # type: ignore[arg-type]


def test_repr_hides_passphrase(store: EncryptedFileKeyStore) -> None:
    assert PASSPHRASE.decode() not in repr(store)


def test_no_overwrite(store: EncryptedFileKeyStore, key: ec.EllipticCurvePrivateKey) -> None:
    store.save("issuing-ca", key)
    before = (store.directory / "issuing-ca.key.pem").read_bytes()
    with pytest.raises(KeyStoreError) as info:
        store.save("issuing-ca", generate_private_key())
    assert info.value.code == "key_exists"
    assert (store.directory / "issuing-ca.key.pem").read_bytes() == before


def test_missing_key(store: EncryptedFileKeyStore) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        store.load("nothing")
    assert info.value.code == "key_not_found"


def test_unencrypted_file_refused(store: EncryptedFileKeyStore) -> None:
    store.directory.mkdir()
    (store.directory / "plain.key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(KeyStoreError) as info:
        store.load("plain")
    assert info.value.code == "not_encrypted"


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 101, "名前"])
def test_invalid_names(store: EncryptedFileKeyStore, name: str) -> None:
    with pytest.raises(KeyStoreError) as info:
        store.exists(name)
    assert info.value.code == "invalid_name"
