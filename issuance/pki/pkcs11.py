"""The CA keys in a PKCS#11 token (a hardware security module), through ``python-pkcs11``.

Keys are generated inside the token, sensitive and not extractable: no process ever sees the
private key, it can only ask the token to sign. A store opens one session per process and keeps
it; when the token stops answering (a restarted HSM, a dropped network link) the next signature
opens a new session, reloading the module if the token is gone from the slot list, and raises
:class:`~issuance.pki.keys.TokenUnavailableError` while it stays away. No error or log line
carries the PIN.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from .keys import (
    _EC_CURVES,
    _RSA_SIZES,
    DEFAULT_KEY_TYPE,
    KeyNotFoundError,
    KeyStoreError,
    PublicKey,
    TokenKey,
    TokenUnavailableError,
)

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Library  # what pkcs11.lib() returns

logger = logging.getLogger(__name__)
T = TypeVar("T")

# What a token that went away (or came back with new sessions) answers; worth one reconnect.
_LOST = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.NoSuchToken,
)
_PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired, p11.PinLocked)
_CURVE_NAMES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}
_RSA_MECHANISMS = {"sha256": Mechanism.SHA256_RSA_PKCS, "sha384": Mechanism.SHA384_RSA_PKCS}
# The private key: made in the token, never readable (CKA_SENSITIVE, not CKA_EXTRACTABLE),
# usable only after login (CKA_PRIVATE), for signing only.
PRIVATE_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
PUBLIC_TEMPLATE = {Attribute.TOKEN: True, Attribute.VERIFY: True}

_libraries: dict[str, tuple[int, Pkcs11Library]] = {}
_libraries_lock = threading.Lock()


def library(module: str) -> Pkcs11Library:
    """The PKCS#11 module, loaded and initialised once per process (again in a forked child:
    PKCS#11 sessions do not survive a fork)."""
    with _libraries_lock:
        pid = os.getpid()
        if module in _libraries and _libraries[module][0] != pid:
            lib = _libraries[module][1]
            lib.reinitialize()
            _libraries[module] = (pid, lib)
        if module not in _libraries:
            try:
                _libraries[module] = (pid, pkcs11.lib(module))
            except p11.PKCS11Error as error:
                raise TokenUnavailableError(
                    f"cannot load the PKCS#11 module {module}: {type(error).__name__}"
                ) from None
        return _libraries[module][1]


class Pkcs11KeyStore:
    """Keys of one token, found by their labels (``labels`` maps our key names to them)."""

    def __init__(
        self,
        module: str,
        token_label: str,
        pin: str,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not module or not token_label:
            raise KeyStoreError("the PKCS#11 module and token label must be set", code="config")
        if not isinstance(pin, str) or not pin:
            raise KeyStoreError("the token PIN is missing", code="pin")
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._labels = dict(labels or {})
        self._lock = threading.RLock()
        self._session: pkcs11.Session | None = None
        self._pid = os.getpid()
        self._private: dict[str, pkcs11.SignMixin] = {}

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({self.module!r}, token={self.token_label!r})"

    def label_for(self, name: str) -> str:
        return self._labels.get(name, name)

    # ------------------------------------------------------------ the KeyStore protocol

    def exists(self, name: str) -> bool:
        label = self.label_for(name)
        return bool(self._call(lambda session: list(session.get_objects({Attribute.LABEL: label}))))

    def load(self, name: str) -> Pkcs11Key:
        label = self.label_for(name)

        def find(session: pkcs11.Session) -> PublicKey:
            try:
                session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            except p11.NoSuchKey:
                raise KeyNotFoundError(f"no key labelled {label!r} in the token") from None
            except p11.MultipleObjectsReturned:
                raise KeyStoreError(
                    f"several keys are labelled {label!r} in the token", code="ambiguous_key"
                ) from None
            return _public_key(cast(pkcs11.PublicKey, public))  # asked for by its class

        return Pkcs11Key(self, label, self._call(find))

    def generate(self, name: str, key_type: str = DEFAULT_KEY_TYPE) -> Pkcs11Key:
        """A key pair made inside the token; refused when anything has that label already."""
        label = self.label_for(name)
        if key_type not in _EC_CURVES and key_type not in _RSA_SIZES:
            raise ValueError(f"unknown key type {key_type!r}")

        def generate(session: pkcs11.Session) -> PublicKey:
            if list(session.get_objects({Attribute.LABEL: label})):
                raise KeyStoreError(
                    f"the token has a key labelled {label!r} already; it is never overwritten",
                    code="key_exists",
                )
            options: dict[str, Any] = {
                "store": True,
                "label": label,
                "id": label.encode(),
                "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
                "private_template": PRIVATE_TEMPLATE,
                "public_template": PUBLIC_TEMPLATE,
            }
            if key_type in _CURVE_NAMES:
                parameters = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVE_NAMES[key_type])},
                    local=True,
                )
                public, _ = parameters.generate_keypair(**options)
            else:
                options["public_template"] = PUBLIC_TEMPLATE | {
                    Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"
                }
                public, _ = session.generate_keypair(KeyType.RSA, _RSA_SIZES[key_type], **options)
            return _public_key(public)

        return Pkcs11Key(self, label, self._call(generate))

    def save(self, name: str, key: object) -> None:
        raise KeyStoreError(
            "keys are generated inside the token and never imported", code="import_refused"
        )

    # ------------------------------------------------------------ sessions

    def private_key(self, session: pkcs11.Session, label: str) -> pkcs11.SignMixin:
        """The handle of the private key (looked up once per session)."""
        if label not in self._private:
            try:
                # A private key object is made with the signing methods (SignMixin).
                self._private[label] = cast(
                    pkcs11.SignMixin,
                    session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label),
                )
            except p11.NoSuchKey:
                raise KeyNotFoundError(f"no key labelled {label!r} in the token") from None
        return self._private[label]

    def session(self) -> pkcs11.Session:
        """The store's session, opened once (with the PIN) and kept."""
        with self._lock:
            if self._session is not None and self._pid != os.getpid():
                self._session, self._private = None, {}  # the parent's, invalid after a fork
            if self._session is None:
                self._session = self._open()
                self._pid = os.getpid()
            return self._session

    def _open(self) -> pkcs11.Session:
        lib = library(self.module)
        try:
            try:
                token = lib.get_token(token_label=self.token_label)
            except (p11.NoSuchToken, *_LOST):
                # A token that was re-plugged, re-created or restarted appears after a reload.
                lib.reinitialize()
                token = lib.get_token(token_label=self.token_label)
            try:
                return token.open(rw=True, user_pin=self._pin)
            except p11.UserAlreadyLoggedIn:
                return token.open(rw=True)  # another session of this process logged in
        except p11.NoSuchToken:
            raise TokenUnavailableError(f"no token labelled {self.token_label!r}") from None
        except _PIN_ERRORS as error:
            raise TokenUnavailableError(
                f"the token {self.token_label!r} refused the PIN ({type(error).__name__})",
                code="pin",
            ) from None
        except p11.PKCS11Error as error:
            raise TokenUnavailableError(
                f"cannot open a session on the token {self.token_label!r}: {type(error).__name__}"
            ) from None

    def _drop_session(self) -> None:
        session, self._session = self._session, None
        self._private.clear()
        if session is not None:
            try:
                session.close()
            except p11.PKCS11Error:
                pass  # the session is gone with the token

    def _call(self, action: Callable[[pkcs11.Session], T]) -> T:
        """``action`` on the session; once more on a new session if the token was lost."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return action(self.session())
                except _LOST as error:
                    self._drop_session()
                    if attempt == 2:
                        raise TokenUnavailableError(
                            f"the token {self.token_label!r} does not answer: "
                            f"{type(error).__name__}"
                        ) from None
                    logger.warning(
                        "PKCS#11 token %r lost its session (%s); reconnecting",
                        self.token_label,
                        type(error).__name__,
                    )
                except p11.PKCS11Error as error:
                    raise TokenUnavailableError(
                        f"the token {self.token_label!r} refused: {type(error).__name__}"
                    ) from None
            raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._drop_session()


class Pkcs11Key(TokenKey):
    """A private key in the token: its public key (read once) and signatures on request."""

    def __init__(self, store: Pkcs11KeyStore, label: str, public_key: PublicKey) -> None:
        self.store = store
        self.label = label
        self._public_key = public_key

    def __repr__(self) -> str:
        return f"Pkcs11Key({self.label!r}, {self.store!r})"

    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        if isinstance(self._public_key, ec.EllipticCurvePublicKey):
            # CKM_ECDSA over the digest (every token has it; hashing ones vary): r || s.
            digest = hashes.Hash(algorithm)
            digest.update(data)
            hashed = digest.finalize()
            raw = self._sign(hashed, Mechanism.ECDSA)
            half = len(raw) // 2
            r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
            return encode_dss_signature(r, s)
        return self._sign(data, _RSA_MECHANISMS[algorithm.name])

    def _sign(self, data: bytes, mechanism: Mechanism) -> bytes:
        def sign(session: pkcs11.Session) -> bytes:
            return self.store.private_key(session, self.label).sign(data, mechanism=mechanism)

        return self.store._call(sign)


def _public_key(public: pkcs11.PublicKey) -> PublicKey:
    if public.key_type == KeyType.EC:
        loaded = serialization.load_der_public_key(encode_ec_public_key(public))
    elif public.key_type == KeyType.RSA:
        loaded = rsa.RSAPublicNumbers(
            int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(public[Attribute.MODULUS], "big"),
        ).public_key()
    else:
        raise KeyStoreError("the token key is neither EC nor RSA", code="unsupported_key")
    if not isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise KeyStoreError("the token key is neither EC nor RSA", code="unsupported_key")
    return loaded
