"""Private key generation and storage.

Keys are kept behind the small :class:`KeyStore` protocol: :class:`EncryptedFileKeyStore` here,
and the PKCS#11 token of :mod:`issuance.pki.pkcs11`, whose keys never leave the token. A key
a store hands out is a :data:`SigningKey`: a ``cryptography`` private key (file store) or a
:class:`TokenKey` that only signs; :mod:`issuance.pki.signing` signs with either.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

DEFAULT_KEY_TYPE = "ec-p256"
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1,
    "ec-p384": ec.SECP384R1,
}
_RSA_SIZES: dict[str, int] = {
    "rsa-2048": 2048,
    "rsa-3072": 3072,
    "rsa-4096": 4096,
}
KEY_TYPES: tuple[str, ...] = (*_EC_CURVES, *_RSA_SIZES)

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_FILE_SUFFIX = ".key.pem"
_ENCRYPTED_PEM_LABEL = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


class KeyStoreError(Exception):
    """Base error of the key stores. ``code`` is stable, the message is English."""

    code = "key_store"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class KeyNotFoundError(KeyStoreError):
    code = "key_not_found"


class PassphraseError(KeyStoreError):
    code = "passphrase"


class TokenUnavailableError(KeyStoreError):
    """The token cannot be reached or refuses to sign (the message never holds the PIN)."""

    code = "token_unavailable"


class TokenKey(ABC):
    """A private key that stays in a token: it has a public key and signs, nothing more."""

    @abstractmethod
    def public_key(self) -> PublicKey: ...

    @abstractmethod
    def sign(self, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """The X.509 signature of ``data``: a DER ECDSA-Sig-Value or PKCS#1 v1.5."""

    @property
    def key_size(self) -> int:
        return self.public_key().key_size

    @property
    def curve(self) -> ec.EllipticCurve | None:
        public = self.public_key()
        return public.curve if isinstance(public, ec.EllipticCurvePublicKey) else None


SigningKey = PrivateKey | TokenKey


def generate_private_key(key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
    """Generate a key: "ec-p256" (default), "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"."""
    if key_type in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[key_type]())
    if key_type in _RSA_SIZES:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[key_type])
    raise ValueError(f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")


class KeyStore(Protocol):
    def exists(self, name: str) -> bool: ...

    def load(self, name: str) -> SigningKey: ...

    def generate(self, name: str, key_type: str = DEFAULT_KEY_TYPE) -> SigningKey:
        """A new key made and kept by the store; :class:`KeyStoreError` if ``name`` is used."""
        ...


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not _KEY_NAME.fullmatch(name):
        raise KeyStoreError(
            "key names must be 1-100 characters of A-Z a-z 0-9 _ . - "
            "and must not start with a dot, dash or underscore",
            code="invalid_name",
        )


class EncryptedFileKeyStore(KeyStore):
    """Keys as passphrase-encrypted PKCS#8 PEM files ``<name>.key.pem`` (mode 0600)."""

    def __init__(self, directory: str | os.PathLike[str], passphrase: bytes) -> None:
        if not isinstance(passphrase, bytes) or not passphrase:
            raise PassphraseError("the key store passphrase must be non-empty bytes")
        self.directory = Path(directory)
        self._passphrase = passphrase

    def __repr__(self) -> str:
        return f"EncryptedFileKeyStore({str(self.directory)!r})"

    def path_for(self, name: str) -> Path:
        _check_key_name(name)
        return self.directory / f"{name}{_FILE_SUFFIX}"

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def load(self, name: str) -> PrivateKey:
        path = self.path_for(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.directory}") from None
        if _ENCRYPTED_PEM_LABEL not in data:
            raise KeyStoreError(
                f"key file {path} is not an encrypted PKCS#8 PEM file", code="not_encrypted"
            )
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase)
        except (ValueError, TypeError):
            # Never chain the original exception: keep the error free of any secret.
            raise PassphraseError(
                f"cannot decrypt key {name!r}: wrong passphrase or damaged key file"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyStoreError(f"key {name!r} is neither EC nor RSA", code="unsupported_key")
        return key

    def generate(self, name: str, key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
        if self.exists(name):
            raise KeyStoreError(f"a key named {name!r} already exists", code="key_exists")
        key = generate_private_key(key_type)
        self.save(name, key)
        return key

    def save(self, name: str, key: PrivateKey) -> None:
        """Store ``key``; raise :class:`KeyStoreError` if ``name`` is already used."""
        path = self.path_for(name)
        pem = key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.BestAvailableEncryption(self._passphrase),
        )
        self._ensure_directory()
        _write_new_private_file(path, pem, name)

    def _ensure_directory(self) -> None:
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
            self.directory.chmod(0o700)


def _write_new_private_file(path: Path, data: bytes, name: str) -> None:
    """Create ``path`` with mode 0600; fail if it exists (O_EXCL, no race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"a key named {name!r} already exists", code="key_exists") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as file:
            fd = -1
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        if fd != -1:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise
