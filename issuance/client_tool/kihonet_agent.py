#!/usr/bin/env python3
"""証明書取得クライアントツール（RAカスタムプラグインクライアントツール）.

The customer's side of the client-certificate journey of 企業保険インターネットサービス
(企保ネット).  The key pair is made on the customer's PC and the private key never leaves it:
it is only ever written encrypted, in the tool's own store (password-protected PKCS#12 files)
and, by default, into the certificate store the browser reads (Linux: the shared NSS database
and Firefox profiles; Windows: the current user's personal store; macOS: the login keychain).

Needs only the Python standard library and ``cryptography``; uses ``keyring`` where it is
installed, to keep the store's secret in the OS keyring.  Run as::

    python kihonet_agent.py serve --server https://kihonet.example.jp
    python kihonet_agent.py enroll --server URL --kihonet-code ... --email ... [--no-install]
    python kihonet_agent.py renew --server URL [--serial S] [--no-install]
    python kihonet_agent.py list [--server URL]
    python kihonet_agent.py install SERIAL

Reusable pieces: ``AgentStore``, ``ApiClient``, ``enroll_with_token``, ``renew``,
``install_certificate`` (with one ``StoreBackend`` per platform), ``resume_pending``,
``make_server`` and ``run_server``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import errno
import getpass
import hashlib
import http.client
import io
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - depends on the customer's PC
    if __name__ == "__main__":
        sys.stderr.write(
            "このツールの実行には cryptography が必要です。"
            "「python -m pip install cryptography」を実行してから、もう一度お試しください。\n"
        )
        raise SystemExit(1) from None
    raise

__version__ = "1.0.0"

DEFAULT_PORT = 47115
LISTEN_HOST = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024
MAX_DRAIN_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 1024 * 1024
HTTP_TIMEOUT_SECONDS = 30.0
PKCS12_KDF_ROUNDS = 200_000
PROMPT_ATTEMPTS = 3

ENV_HOME = "KIHONET_AGENT_HOME"
ENV_PASSPHRASE = "KIHONET_AGENT_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
ENV_PORT = "KIHONET_AGENT_PORT"
ENV_SERVER = "KIHONET_SERVER"
ENV_CAFILE = "KIHONET_CAFILE"
ENV_PLATFORM = "KIHONET_AGENT_PLATFORM"  # linux | windows | macos: which certificate store

UTC = timezone.utc  # noqa: UP017 - the tool also runs on customers' older Pythons
JST = timezone(timedelta(hours=9), "JST")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

READY_MESSAGE = "受付を開始しました。"
STOPPED_MESSAGE = "受付を終了しました。"
ADMIN_REQUIRED_MESSAGE = (
    "クライアント証明書をインストールするには、パソコンの管理者権限が必要な場合があります。"
    "管理者として証明書取得クライアントツールを起動し直してください。"
)
EMAIL_CONFIRMATION_MESSAGE = (
    "Eメールアドレスが正しければ[OK]を、正しくない場合には[キャンセル]をクリックして"
    "新規取得ページ上のEメールアドレスを修正してください。"
    "Eメールアドレスが間違っていると、クライアント証明書の取得ができなくなります。"
)
ENROLL_DONE_MESSAGE = "クライアント証明書の作成が完了しました"
RENEW_DONE_MESSAGE = "クライアント証明書の更新が完了しました"
NETWORK_ERROR_MESSAGE = (
    "サーバーに接続できませんでした。ネットワークの接続とサーバーのアドレスを確認してください。"
)
TLS_ERROR_MESSAGE = (
    "サーバーに接続できませんでした。サーバー証明書を検証できません。"
    "社内の認証局を使う場合は --cafile で認証局証明書を指定してください。"
)


# --------------------------------------------------------------------------- errors


class AgentError(Exception):
    """An error to show the user; ``status_code`` is the machine-readable code."""

    default_status_code = "agent_error"
    default_http_status = 500

    def __init__(
        self,
        message: str,
        *,
        status_code: str | None = None,
        http_status: int | None = None,
        errors: Mapping[str, Any] | None = None,
        desks: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code or self.default_status_code
        self.http_status = http_status or self.default_http_status
        self.errors = dict(errors) if errors else None
        self.desks = list(desks) if desks else None

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"status_code": self.status_code, "message": self.message}
        if self.errors:
            payload["errors"] = self.errors
        if self.desks:
            payload["desks"] = self.desks
        return payload

    def display(self) -> str:
        """The message as shown on the console: 「入力情報エラー（ステータスコード：3420）」."""
        return f"{self.message}（ステータスコード：{self.status_code}）"


class BadRequest(AgentError):
    default_status_code = "agent_bad_request"
    default_http_status = 400


class CertificateNotFound(AgentError):
    default_status_code = "agent_not_found"
    default_http_status = 404


class WrongPassphrase(AgentError):
    default_status_code = "agent_wrong_passphrase"
    default_http_status = 500


class AdminRightsRequired(AgentError):
    """R14: the store cannot be written, most often for want of administrator rights."""

    default_status_code = "admin_required"
    default_http_status = 500

    def __init__(self, message: str = ADMIN_REQUIRED_MESSAGE, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class StoreWriteError(AgentError):
    default_status_code = "agent_store_write"
    default_http_status = 500


class ServerError(AgentError):
    """The kihonet server answered with an error (its own status_code and message)."""

    default_status_code = "agent_server_error"
    default_http_status = 502


class NetworkError(AgentError):
    default_status_code = "agent_network"
    default_http_status = 502

    def __init__(
        self, message: str = NETWORK_ERROR_MESSAGE, *, request_sent: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent  # False: refused before the request left this PC


class BadServerResponse(AgentError):
    default_status_code = "agent_bad_response"
    default_http_status = 502

    def __init__(
        self, message: str = "サーバーから予期しない応答がありました。", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)


def _is_permission_error(exc: OSError) -> bool:
    return isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM)


def store_write_error(exc: OSError, path: Path) -> AgentError:
    """The user-facing error for a failed write to the store (R14 for permission errors)."""
    if _is_permission_error(exc):
        return AdminRightsRequired()
    return StoreWriteError(
        f"証明書を保存できませんでした（{path}：{exc.strerror or exc}）。"
        "保存先のフォルダーと空き容量を確認してください。"
    )


# --------------------------------------------------------------------------- formats


def format_serial(serial: int) -> str:
    """Serial numbers everywhere: uppercase hex, no separators, no leading zeros."""
    return format(serial, "X")


def normalize_serial(text: str) -> str:
    """Accept ``0a:1b``, ``0x0A1B`` or ``a1b`` and return ``A1B``."""
    cleaned = str(text).strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        value = int(cleaned, 16)
    except ValueError:
        value = 0
    if value <= 0 or len(cleaned) > 64:
        raise BadRequest("シリアル番号の形式が正しくありません。")
    return format_serial(value)


def format_japanese_date(moment: datetime) -> str:
    """A date as the customer reads it, in Japan time: 2029年11月28日."""
    local = moment.astimezone(JST)
    return f"{local.year}年{local.month}月{local.day}日"


def isoformat_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def utc_now() -> datetime:
    return datetime.now(UTC)


def _name_value(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    return str(attributes[0].value) if attributes else ""


@dataclass(frozen=True)
class CertificateInfo:
    """What the tool shows of a certificate (subject ``C=JP, O=…, OU=<code>, CN=<id> <no>``)."""

    serial: str
    subject: str
    user_id: str
    management_number: str
    kihonet_code: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> CertificateInfo:
        common_name = _name_value(certificate.subject, NameOID.COMMON_NAME)
        user_id, _, management_number = common_name.partition(" ")
        return cls(
            serial=format_serial(certificate.serial_number),
            subject=certificate.subject.rfc4514_string(),
            user_id=user_id,
            management_number=management_number.strip(),
            kihonet_code=_name_value(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or utc_now()) > self.not_after

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "subject": self.subject,
            "user_id": self.user_id,
            "management_number": self.management_number,
            "kihonet_code": self.kihonet_code,
            "not_before": isoformat_utc(self.not_before),
            "not_after": isoformat_utc(self.not_after),
            "expired": self.is_expired(now),
        }

    def issued_summary(self) -> dict[str, Any]:
        """The answer of ``/enroll`` and ``/renew``."""
        return {
            "serial": self.serial,
            "not_after": isoformat_utc(self.not_after),
            "subject": self.subject,
            "user_id": self.user_id,
            "management_number": self.management_number,
        }

    def summary_line(self) -> str:
        """Serial, user ID, management number and expiry on one line."""
        return (
            f"{self.serial}  ユーザーID：{self.user_id}  管理番号：{self.management_number}"
            f"  有効期限：{format_japanese_date(self.not_after)}"
        )

    def describe(self) -> str:
        """One line of the renewal choice: serial, subject, expiry."""
        line = self.summary_line()
        return f"{line}  期限切れ" if self.is_expired() else line


CERTIFICATE_STATUSES = ("valid", "renewed", "revoked", "expired", "unknown")
STATUS_LABELS = {
    "valid": "有効",
    "renewed": "更新済み",
    "revoked": "失効",
    "expired": "期限切れ",
    "unknown": "不明（サーバーで確認できませんでした）",
}


# --------------------------------------------------------------------------- keys


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A new EC P-256 key, made here and never sent anywhere."""
    return ec.generate_private_key(ec.SECP256R1())


def build_csr_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """A CSR for ``key``; the server sets the real subject."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign_challenge(key: Any, challenge: str) -> str:
    """Standard base64 of the signature over ``challenge`` (ECDSA or PKCS#1 v1.5, SHA-256)."""
    try:
        data = challenge.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BadServerResponse() from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise AgentError("この証明書の鍵の種類には対応していません。")
    return base64.b64encode(signature).decode("ascii")


def _public_key_der(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def pkcs12_encryption(passphrase: str) -> serialization.KeySerializationEncryption:
    """PBES2 / AES-256-CBC / PBKDF2-HMAC-SHA256 with a SHA-256 MAC (imports on current OSes)."""
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase.encode("utf-8"))
    )


def parse_issued_certificate(
    response: Mapping[str, Any], key: Any
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The certificate and chain of a 201 answer; the certificate must be for ``key``."""
    try:
        certificate = x509.load_pem_x509_certificate(str(response["certificate"]).encode())
        chain_pem = str(response.get("chain") or "")
        chain = x509.load_pem_x509_certificates(chain_pem.encode()) if chain_pem.strip() else []
    except (KeyError, ValueError) as exc:
        raise BadServerResponse() from exc
    if _public_key_der(certificate.public_key()) != _public_key_der(key.public_key()):
        raise BadServerResponse("サーバーから受け取った証明書が、作成した鍵と一致しません。")
    return certificate, chain


# --------------------------------------------------------------------------- store


def default_store_path() -> Path:
    """``%APPDATA%\\kihonet`` on Windows, ``~/.kihonet`` elsewhere."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "kihonet"
    return Path.home() / ".kihonet"


def resolve_store_path(option: str | os.PathLike[str] | None = None) -> Path:
    """``--store``, else ``KIHONET_AGENT_HOME``, else the per-user default."""
    if option:
        return Path(option).expanduser()
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    return default_store_path()


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` (mode 0600) through a temporary file and ``os.replace``."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass
class StoredCredential:
    key: Any
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)


class AgentStore:
    """The folder holding ``<SERIAL>.p12`` (key, certificate, chain) and ``<SERIAL>.pem``."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, passphrase: str | None = None
    ) -> None:
        self.path = resolve_store_path(path)
        self.passphrase = passphrase
        self._lock = threading.Lock()

    def p12_path(self, serial: str) -> Path:
        return self.path / f"{normalize_serial(serial)}.p12"

    def pem_path(self, serial: str) -> Path:
        return self.path / f"{normalize_serial(serial)}.pem"

    def create(self) -> None:
        """Make the folder (0700) if it is missing."""
        if self.path.is_dir():
            return
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
        except OSError as exc:
            raise store_write_error(exc, self.path) from exc

    def ensure_writable(self) -> None:
        """Fail early (R14) rather than after the server has issued a certificate."""
        self.create()
        try:
            fd, probe = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".probe")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise store_write_error(exc, self.path) from exc

    def has_keys(self) -> bool:
        return any(self._p12_files()) or bool(self.pending_requests())

    def _p12_files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("*.p12") if not p.name.startswith("."))

    def certificates(self) -> list[CertificateInfo]:
        """The certificates held, from the public ``.pem`` files, by expiry."""
        if not self.path.is_dir():
            return []
        found = []
        for pem in self.path.glob("*.pem"):
            if pem.name.startswith("."):
                continue
            try:
                found.append(
                    CertificateInfo.from_certificate(
                        x509.load_pem_x509_certificate(pem.read_bytes())
                    )
                )
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda info: (info.not_after, info.serial))

    def renewable_certificates(self) -> list[CertificateInfo]:
        return [info for info in self.certificates() if self.p12_path(info.serial).is_file()]

    def require_passphrase(self) -> str:
        if not self.passphrase:
            raise WrongPassphrase("パスワードが設定されていません。")
        return self.passphrase

    def verify_passphrase(self) -> None:
        """Check the passphrase against one held PKCS#12 file (if any)."""
        files = self._p12_files()
        if files:
            self._read_p12(files[0])
            return
        for entry in self.pending_requests()[:1]:
            self.pending_key(entry)

    def install(
        self, key: Any, certificate: x509.Certificate, chain: Iterable[x509.Certificate] = ()
    ) -> CertificateInfo:
        """Keep ``key`` + ``certificate`` + ``chain`` as ``<SERIAL>.p12`` and ``<SERIAL>.pem``."""
        info = CertificateInfo.from_certificate(certificate)
        p12 = pkcs12.serialize_key_and_certificates(
            friendly_name(info),
            key,
            certificate,
            list(chain) or None,
            pkcs12_encryption(self.require_passphrase()),
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        with self._lock:
            self.create()
            try:
                atomic_write(self.p12_path(info.serial), p12)
                atomic_write(self.pem_path(info.serial), pem)
            except OSError as exc:
                raise store_write_error(exc, self.path) from exc
        return info

    def load(self, serial: str) -> StoredCredential:
        """The key, certificate and chain of ``<SERIAL>.p12``."""
        return self._read_p12(self.p12_path(serial))

    def _read_p12(self, path: Path) -> StoredCredential:
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise CertificateNotFound("指定された証明書が見つかりません。") from exc
        try:
            key, certificate, chain = pkcs12.load_key_and_certificates(
                data, self.require_passphrase().encode("utf-8")
            )
        except ValueError as exc:
            raise WrongPassphrase("パスワードが正しくありません。") from exc
        if key is None or certificate is None:
            raise CertificateNotFound(f"証明書ファイルの内容が正しくありません（{path.name}）。")
        return StoredCredential(key, certificate, list(chain))

    # -- requests sent and not yet answered (issue: a certificate lost with its answer)

    @property
    def pending_path(self) -> Path:
        return self.path / "pending"

    def save_pending(self, request: Mapping[str, Any], key: Any) -> dict[str, Any]:
        """Keep ``request`` and its new key (encrypted with the store's secret) on disk.

        Called before the CSR is sent: if the answer is lost (connection dropped, tool or PC
        stopped), the same key and CSR are sent again, now or on the tool's next start.
        """
        entry = dict(request)
        entry["id"] = secrets.token_hex(8)
        entry["created_at"] = isoformat_utc(utc_now())
        entry["key"] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.require_passphrase().encode("utf-8")),
        ).decode("ascii")
        self._write_pending(entry)
        return entry

    def _write_pending(self, entry: Mapping[str, Any]) -> None:
        with self._lock:
            self.create()
            try:
                self.pending_path.mkdir(mode=0o700, exist_ok=True)
                data = json.dumps(entry, ensure_ascii=False, indent=1).encode("utf-8")
                atomic_write(self.pending_path / f"{entry['id']}.json", data)
            except OSError as exc:
                raise store_write_error(exc, self.pending_path) from exc

    def update_pending(self, entry: dict[str, Any], **changes: Any) -> None:
        entry.update(changes)
        self._write_pending(entry)

    def pending_requests(self) -> list[dict[str, Any]]:
        """The requests waiting for an answer, oldest first."""
        if not self.pending_path.is_dir():
            return []
        found = []
        for path in self.pending_path.glob("*.json"):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and entry.get("kind") in ("enroll", "renew"):
                found.append(entry)
        return sorted(found, key=lambda entry: str(entry.get("created_at")))

    def pending_key(self, entry: Mapping[str, Any]) -> Any:
        try:
            return serialization.load_pem_private_key(
                str(entry["key"]).encode("ascii"), self.require_passphrase().encode("utf-8")
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise WrongPassphrase("パスワードが正しくありません。") from exc

    def seal(self, text: str) -> str:
        """``text`` (a one-time token, a signature) encrypted with the store's secret."""
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(self._sealing_key(salt)).encrypt(nonce, text.encode("utf-8"), None)
        return base64.b64encode(salt + nonce + sealed).decode("ascii")

    def unseal(self, sealed: str) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
            key = self._sealing_key(raw[:16])
            return AESGCM(key).decrypt(raw[16:28], raw[28:], None).decode("utf-8")
        except Exception as exc:  # InvalidTag, bad base64: not this store's secret
            raise WrongPassphrase("パスワードが正しくありません。") from exc

    def _sealing_key(self, salt: bytes) -> bytes:
        scrypt = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1)
        return scrypt.derive(self.require_passphrase().encode("utf-8"))

    def drop_pending(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.pending_path / f"{entry['id']}.json").unlink()

    # -- what the tool knows besides the files: where each certificate is installed, renewals

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if not isinstance(state, dict):
            state = {}
        for name in ("installed", "renewed_by", "renew_at", "auto_renew"):
            if not isinstance(state.get(name), dict):
                state[name] = {}
        return state

    def _update_state(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            self.create()
            state = self._read_state()
            change(state)
            data = json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True)
            try:
                atomic_write(self.state_path, data.encode("utf-8"))
            except OSError as exc:
                raise store_write_error(exc, self.path) from exc

    def installed_in(self, serial: str) -> list[InstallTarget]:
        entries = self._read_state()["installed"].get(normalize_serial(serial)) or []
        targets = []
        for entry in entries if isinstance(entries, list) else []:
            with contextlib.suppress(KeyError, TypeError):
                targets.append(InstallTarget.from_json(entry))
        return targets

    def record_installed(self, serial: str, targets: Iterable[InstallTarget]) -> None:
        key = normalize_serial(serial)
        known = self.installed_in(key)
        added = [target for target in targets if target not in known]
        if not added:
            return

        def change(state: dict[str, Any]) -> None:
            state["installed"][key] = [target.to_json() for target in known + added]

        self._update_state(change)

    def record_removed(self, serial: str, target: InstallTarget) -> None:
        key = normalize_serial(serial)
        kept = [known for known in self.installed_in(key) if known != target]

        def change(state: dict[str, Any]) -> None:
            state["installed"][key] = [known.to_json() for known in kept]

        self._update_state(change)

    def record_renewal(self, renewed: str, new: str) -> None:
        def change(state: dict[str, Any]) -> None:
            state["renewed_by"][normalize_serial(renewed)] = normalize_serial(new)

        self._update_state(change)

    def renewed_by(self, serial: str) -> str | None:
        value = self._read_state()["renewed_by"].get(normalize_serial(serial))
        return value if isinstance(value, str) else None

    def renewal_moment(
        self,
        serial: str,
        start: datetime,
        end: datetime,
        choose: Callable[[datetime, datetime], datetime],
    ) -> datetime:
        """When to renew ``serial`` inside the server's window ``[start, end)``: the moment kept
        for this very window (consecutive runs agree), else a new one from ``choose``, kept."""
        key = normalize_serial(serial)
        window = {"start": isoformat_utc(start), "end": isoformat_utc(end)}
        kept = self._read_state()["renew_at"].get(key)
        if isinstance(kept, dict) and kept.get("window") == window:
            moment = _parse_moment(kept.get("at"))
            if moment is not None and start <= moment <= end:
                return moment
        moment = choose(start, end)

        def change(state: dict[str, Any]) -> None:
            state["renew_at"][key] = {"window": window, "at": isoformat_utc(moment)}

        self._update_state(change)
        return moment

    def auto_renew_server(self) -> tuple[str, str | None] | None:
        """The server (and CA file) auto-renewal was enabled for, to report to when disabling."""
        kept = self._read_state()["auto_renew"]
        server = kept.get("server")
        if not isinstance(server, str) or not server:
            return None
        cafile = kept.get("cafile")
        return server, cafile if isinstance(cafile, str) and cafile else None

    def record_auto_renew_server(self, server: str, cafile: str | None) -> None:
        def change(state: dict[str, Any]) -> None:
            state["auto_renew"] = {"server": server, "cafile": cafile}

        self._update_state(change)


# --------------------------------------------------------------------------- browser stores
#
# One small interface, one backend per platform.  A backend names the stores it installs into
# (``targets``), installs a held credential into one (``install``) and removes one from it
# (``remove``).  Each is driven by the system's own tools (NSS ``certutil``/``pk12util``,
# Windows ``certutil``/PowerShell, macOS ``security``), fed a temporary PKCS#12 file that is
# protected by a one-time random password and deleted right after.

STORE_TOOL_TIMEOUT_SECONDS = 120.0
LEGACY_PKCS12_KDF_ROUNDS = 2048

NSS_LABEL = "Google Chrome / Chromium 用の証明書ストア（Linux NSS 共有データベース）"
FIREFOX_LABEL = "Mozilla Firefox の証明書ストア（プロファイル {profile}）"
WINDOWS_LABEL = "Google Chrome / Microsoft Edge 用の証明書ストア（Windows 個人）"
MACOS_LABEL = "Google Chrome / Safari 用の証明書ストア（macOS ログイン キーチェーン）"
WINDOWS_STORE_LOCATION = "Cert:\\CurrentUser\\My"

INSTALL_FAILED_MESSAGE = (
    "証明書をブラウザーの証明書ストアにインストールできませんでした。"
    "証明書はこのツールの保管フォルダーに保管されています。"
    "「install シリアル番号」で、もう一度インストールできます。"
)

# What the stores' tools print when the user lacks the rights (Windows: E_ACCESSDENIED).
_DENIED_MARKERS = (
    "access is denied",
    "0x80070005",
    "e_accessdenied",
    "unauthorizedaccess",
    "permission denied",
    "sec_error_read_only",
    "pr_no_access_rights_error",
    "write permissions",
    "アクセスが拒否されました",
)


class InstallFailed(AgentError):
    default_status_code = "install_failed"
    default_http_status = 500

    def __init__(self, message: str = INSTALL_FAILED_MESSAGE, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


def install_error_json(error: AgentError | None) -> dict[str, str] | None:
    """``install_error`` of the ``/enroll`` and ``/renew`` answers."""
    if error is None:
        return None
    code = "admin_rights_required" if isinstance(error, AdminRightsRequired) else error.status_code
    return {"code": code, "message": error.message}


@dataclass(frozen=True)
class InstallTarget:
    """One store a certificate is installed into: kind, Japanese label, path or store name."""

    store: str
    label: str
    location: str

    def to_json(self) -> dict[str, str]:
        return {"store": self.store, "label": self.label, "location": self.location}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InstallTarget:
        return cls(str(data["store"]), str(data["label"]), str(data["location"]))

    def describe(self) -> str:
        return f"{self.label}（{self.location}）"


def pkcs12_bytes(credential: StoredCredential, passphrase: str, *, legacy: bool = False) -> bytes:
    """The credential as PKCS#12: AES-256/SHA-256, or ``legacy`` 3DES/SHA-1 (macOS, old Windows)."""
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(LEGACY_PKCS12_KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 - the form macOS and old Windows read
            .build(passphrase.encode("utf-8"))
        )
    else:
        encryption = pkcs12_encryption(passphrase)
    return pkcs12.serialize_key_and_certificates(
        friendly_name(CertificateInfo.from_certificate(credential.certificate)),
        credential.key,
        credential.certificate,
        credential.chain or None,
        encryption,
    )


def friendly_name(info: CertificateInfo) -> bytes:
    return f"kihonet {info.user_id} {info.management_number}".encode()


@contextlib.contextmanager
def temporary_pkcs12(credential: StoredCredential, *, legacy: bool = False) -> Any:
    """Yield (path, password) of a PKCS#12 file in a private temporary folder, then delete it."""
    password = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="kihonet-") as folder:
        os.chmod(folder, 0o700)
        path = Path(folder) / "certificate.p12"
        atomic_write(path, pkcs12_bytes(credential, password, legacy=legacy))
        yield path, password


def run_store_tool(
    command: list[str], *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of the system's certificate tools; a missing tool is an ``InstallFailed``."""
    try:
        return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=STORE_TOOL_TIMEOUT_SECONDS,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except FileNotFoundError as exc:
        raise InstallFailed(
            f"証明書ストアの操作に必要なプログラム（{command[0]}）が見つかりません。"
            + INSTALL_FAILED_MESSAGE,
            status_code="store_tool_missing",
        ) from exc
    except PermissionError as exc:
        raise AdminRightsRequired() from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallFailed() from exc


def check_store_tool(result: subprocess.CompletedProcess[str]) -> None:
    """R14 when the tool was refused for want of rights; ``InstallFailed`` for other failures."""
    if result.returncode == 0:
        return
    output = f"{result.stdout}\n{result.stderr}".lower()
    if any(marker in output for marker in _DENIED_MARKERS):
        raise AdminRightsRequired()
    raise InstallFailed()


def key_id(key: Any) -> str:
    """NSS's CKA_ID of a key: SHA-1 of the EC point or of the RSA modulus (as ``certutil -K``)."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        data = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        modulus = public.public_numbers().n
        data = modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - an identifier, not a security measure


def certificate_sha1(certificate: x509.Certificate) -> str:
    """The SHA-1 fingerprint (Windows thumbprint, ``security -Z``), uppercase hex."""
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier


class StoreBackend:
    """The interface of a platform's certificate store."""

    name = "none"

    def targets(self) -> list[InstallTarget]:
        raise NotImplementedError

    def install(self, credential: StoredCredential, target: InstallTarget) -> None:
        raise NotImplementedError

    def remove(self, credential: StoredCredential, target: InstallTarget) -> None:
        raise NotImplementedError


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or Path.home())


class NssBackend(StoreBackend):
    """Linux: the shared NSS database Chromium and Chrome read, and each Firefox profile."""

    name = "linux"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def shared_database(self) -> Path:
        """``~/.pki/nssdb`` if that folder exists, else ``${XDG_DATA_HOME:-~/.local/share}/pki/nssdb``."""
        home = _home(self.environ)
        legacy = home / ".pki" / "nssdb"
        if legacy.is_dir():
            return legacy
        data_home = self.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
        return Path(data_home) / "pki" / "nssdb"

    def firefox_profiles(self) -> list[Path]:
        """Folders holding a Firefox certificate database (``cert9.db``)."""
        home = _home(self.environ)
        roots = (
            home / ".mozilla" / "firefox",
            home / "snap" / "firefox" / "common" / ".mozilla" / "firefox",
            home / ".var" / "app" / "org.mozilla.firefox" / ".mozilla" / "firefox",
        )
        found: list[Path] = []
        for root in roots:
            if root.is_dir():
                found.extend(sorted(p.parent for p in root.glob("*/cert9.db")))
        return found

    def targets(self) -> list[InstallTarget]:
        shared = InstallTarget("nss", NSS_LABEL, str(self.shared_database()))
        firefox = [
            InstallTarget("firefox", FIREFOX_LABEL.format(profile=profile.name), str(profile))
            for profile in self.firefox_profiles()
        ]
        return [shared, *firefox]

    @staticmethod
    def _database(target: InstallTarget) -> str:
        return f"sql:{target.location}"

    def _ensure_database(self, folder: Path) -> None:
        if (folder / "cert9.db").is_file():
            return
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise store_write_error(exc, folder) from exc
        check_store_tool(
            run_store_tool(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"])
        )

    def install(self, credential: StoredCredential, target: InstallTarget) -> None:
        folder = Path(target.location)
        self._ensure_database(folder)
        with temporary_pkcs12(credential) as (path, password):
            password_file = path.with_name("password")
            empty_file = path.with_name("empty")
            atomic_write(password_file, password.encode())
            atomic_write(empty_file, b"")
            result = run_store_tool(
                [
                    "pk12util",
                    "-i",
                    str(path),
                    "-d",
                    self._database(target),
                    "-w",
                    str(password_file),
                    "-k",
                    str(empty_file),
                ]
            )
        check_store_tool(result)

    def remove(self, credential: StoredCredential, target: InstallTarget) -> None:
        """Delete the key (and so the certificate NSS lists with it) by its key id.

        NSS gives every certificate of one subject the same nickname, and ``certutil -D -n``
        deletes the newest of them: a renewed certificate is therefore removed by its key id
        (``certutil -F -k``).  Without its key, the browser no longer offers it.
        """
        identifier = key_id(credential.key)
        with tempfile.TemporaryDirectory(prefix="kihonet-") as folder:
            empty_file = Path(folder) / "empty"
            atomic_write(empty_file, b"")
            database = self._database(target)
            listing = run_store_tool(["certutil", "-K", "-d", database, "-f", str(empty_file)])
            if identifier not in listing.stdout.lower():
                return
            check_store_tool(
                run_store_tool(
                    ["certutil", "-F", "-d", database, "-f", str(empty_file), "-k", identifier]
                )
            )


def platform_backend(environ: Mapping[str, str] | None = None) -> StoreBackend:
    """The backend of this system (``KIHONET_AGENT_PLATFORM`` overrides the detection)."""
    environ = os.environ if environ is None else environ
    detected = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
    platform = (environ.get(ENV_PLATFORM) or "").strip().lower() or detected
    backends: dict[str, Callable[[Mapping[str, str]], StoreBackend]] = {
        "linux": NssBackend,
        "windows": WindowsBackend,
        "macos": MacKeychainBackend,
    }
    if platform not in backends:
        raise BadRequest(f"環境変数 {ENV_PLATFORM} の値が正しくありません：{platform}")
    return backends[platform](environ)


@dataclass
class InstallOutcome:
    """Where a certificate is installed now, and why an install failed (if one did)."""

    installed_in: list[InstallTarget] = field(default_factory=list)
    error: AgentError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "installed_in": [target.to_json() for target in self.installed_in],
            "install_error": install_error_json(self.error),
        }


def install_certificate(
    store: AgentStore,
    serial: str,
    *,
    backend: StoreBackend | None = None,
    replaces: str | None = None,
) -> InstallOutcome:
    """Install the held certificate ``serial`` into the browser's stores.

    A store that refuses does not stop the others; the first refusal for want of rights
    (R14) is reported, else the first other failure.  The certificate stays in the tool's own
    store either way.  With ``replaces`` (after a renewal), the renewed certificate is removed
    from each store only once the new one is in it.
    """
    backend = backend or platform_backend()
    credential = store.load(serial)
    installed: list[InstallTarget] = []
    error: AgentError | None = None
    for target in backend.targets():
        try:
            backend.install(credential, target)
        except AgentError as exc:
            if error is None or (
                isinstance(exc, AdminRightsRequired) and not isinstance(error, AdminRightsRequired)
            ):
                error = exc
            continue
        installed.append(target)
    store.record_installed(serial, installed)
    if replaces and installed:
        _remove_replaced(store, replaces, backend, installed)
    return InstallOutcome(store.installed_in(serial), error)


def _remove_replaced(
    store: AgentStore, serial: str, backend: StoreBackend, replaced_in: list[InstallTarget]
) -> None:
    """Remove ``serial`` from the stores the new certificate went into (failures are kept)."""
    try:
        credential = store.load(serial)
    except AgentError:
        return
    for target in store.installed_in(serial):
        if target not in replaced_in:
            continue
        try:
            backend.remove(credential, target)
        except AgentError:
            continue
        store.record_removed(serial, target)


# Retried with the legacy 3DES/SHA-1 PKCS#12 when Windows before 10 1709 cannot read AES.
_WINDOWS_IMPORT_PS = (
    "$ErrorActionPreference = 'Stop'; "
    "$password = ConvertTo-SecureString -String $env:KIHONET_PFX_PASSWORD -AsPlainText -Force; "
    "Import-PfxCertificate -FilePath $env:KIHONET_PFX_FILE "
    "-CertStoreLocation 'Cert:\\CurrentUser\\My' -Password $password | Out-Null"
)
_WINDOWS_REMOVE_PS = (
    "$ErrorActionPreference = 'Stop'; "
    "Remove-Item -Path ('Cert:\\CurrentUser\\My\\' + $env:KIHONET_THUMBPRINT) -DeleteKey"
)


class WindowsBackend(StoreBackend):
    """Windows: the current user's personal store, which Chrome and Edge read; no admin rights.

    ``certutil -user -p PASSWORD -importPFX FILE NoRoot`` (``NoRoot``: the root CA is not
    added to the user's Root store, which would ask the user in a dialog), else PowerShell's
    ``Import-PfxCertificate``.  AES-256 PKCS#12 first (Windows 10 1709 and later, 11), then
    the legacy 3DES/SHA-1 form for older systems.
    """

    name = "windows"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def targets(self) -> list[InstallTarget]:
        return [InstallTarget("windows-user-my", WINDOWS_LABEL, WINDOWS_STORE_LOCATION)]

    @staticmethod
    def _has_certutil() -> bool:
        return shutil.which("certutil") is not None

    def install(self, credential: StoredCredential, target: InstallTarget) -> None:
        failure: AgentError = InstallFailed()
        for legacy in (False, True):
            with temporary_pkcs12(credential, legacy=legacy) as (path, password):
                if self._has_certutil():
                    command = ["certutil", "-user", "-p", password, "-importPFX", str(path)]
                    result = run_store_tool([*command, "NoRoot"])
                else:
                    result = run_store_tool(
                        _powershell(_WINDOWS_IMPORT_PS),
                        env={"KIHONET_PFX_FILE": str(path), "KIHONET_PFX_PASSWORD": password},
                    )
            try:
                check_store_tool(result)
            except AdminRightsRequired:
                raise
            except AgentError as exc:
                failure = exc
                continue
            return
        raise failure

    def remove(self, credential: StoredCredential, target: InstallTarget) -> None:
        thumbprint = certificate_sha1(credential.certificate)
        if self._has_certutil():
            result = run_store_tool(["certutil", "-user", "-delstore", "My", thumbprint])
        else:
            result = run_store_tool(
                _powershell(_WINDOWS_REMOVE_PS), env={"KIHONET_THUMBPRINT": thumbprint}
            )
        check_store_tool(result)


def _powershell(script: str) -> list[str]:
    return ["powershell", "-NoProfile", "-NonInteractive", "-Command", script]


class MacKeychainBackend(StoreBackend):
    """macOS: the login keychain (Chrome and Safari read it), with ``security import``.

    macOS often refuses AES/PBES2 PKCS#12 files ("MAC verification failed"), so it is handed
    the legacy 3DES/SHA-1 form.
    """

    name = "macos"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def keychain(self) -> Path:
        return _home(self.environ) / "Library" / "Keychains" / "login.keychain-db"

    def targets(self) -> list[InstallTarget]:
        return [InstallTarget("macos-login-keychain", MACOS_LABEL, str(self.keychain()))]

    def install(self, credential: StoredCredential, target: InstallTarget) -> None:
        with temporary_pkcs12(credential, legacy=True) as (path, password):
            command = ["security", "import", str(path), "-k", target.location, "-f", "pkcs12"]
            result = run_store_tool([*command, "-P", password])
        check_store_tool(result)

    def remove(self, credential: StoredCredential, target: InstallTarget) -> None:
        thumbprint = certificate_sha1(credential.certificate)
        result = run_store_tool(["security", "delete-identity", "-Z", thumbprint, target.location])
        check_store_tool(result)


def print_install_outcome(store: AgentStore, serial: str, outcome: InstallOutcome) -> None:
    for target in outcome.installed_in:
        print(f"インストール先：{target.describe()}", flush=True)
    if outcome.error is not None:
        print(outcome.error.message, file=sys.stderr)
        print(
            f"証明書はこのツールの保管フォルダー（{store.path}）に保管されています。"
            f"「install {serial}」で、もう一度インストールできます。",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------- server API


def validate_server_url(url: str | None) -> str:
    """The server's base URL without a trailing slash; HTTPS except on this PC."""
    parsed = urllib.parse.urlsplit((url or "").strip())
    host = (parsed.hostname or "").lower()
    secure = parsed.scheme == "https" or (parsed.scheme == "http" and host in LOOPBACK_NAMES)
    if not host or not secure or parsed.query or parsed.fragment or parsed.username:
        raise BadRequest(
            "サーバーのアドレスが正しくありません。https:// で始まるアドレスを指定してください。"
        )
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def server_origin(url: str) -> str:
    """``scheme://host[:port]`` of the server, as a browser sends it in ``Origin``."""
    parsed = urllib.parse.urlsplit(validate_server_url(url))
    host = (parsed.hostname or "").lower()
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parsed.scheme]
    port = parsed.port
    suffix = f":{port}" if port and port != default_port else ""
    return f"{parsed.scheme}://{host}{suffix}"


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Verifying TLS context; ``cafile`` (a private CA, PEM) replaces the system's CAs."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise AgentError(
            f"認証局証明書ファイルを読み込めませんでした（{cafile}）。",
            status_code="agent_cafile",
        ) from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ApiClient:
    """JSON over HTTPS to the kihonet server (``/api/v1/...``); TLS is always verified."""

    def __init__(
        self,
        server: str,
        *,
        cafile: str | None = None,
        timeout: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        self.server = validate_server_url(server)
        self.timeout = timeout
        context = tls_context(cafile or os.environ.get(ENV_CAFILE) or None)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("POST", path, json.dumps(body).encode("utf-8"))

    def get(self, path: str) -> dict[str, Any]:
        return self._send("GET", path, None)

    def _send(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": f"kihonet-agent/{__version__}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in validate_server_url
            self.server + path, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return self._decode(response.read(MAX_RESPONSE_BYTES + 1))
        except urllib.error.HTTPError as exc:
            raise self._server_error(exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError):
                raise NetworkError(TLS_ERROR_MESSAGE, request_sent=False) from exc
            unsent = isinstance(reason, (ConnectionRefusedError, socket.gaierror))
            raise NetworkError(request_sent=not unsent) from exc

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadServerResponse() from exc
        if not isinstance(payload, dict) or len(raw) > MAX_RESPONSE_BYTES:
            raise BadServerResponse()
        return payload

    @staticmethod
    def _server_error(exc: urllib.error.HTTPError) -> AgentError:
        http_status = exc.code if 400 <= exc.code < 500 else 502
        try:
            payload = ApiClient._decode(exc.read(MAX_RESPONSE_BYTES + 1))
        except (AgentError, OSError):
            payload = {}
        finally:
            exc.close()
        code, message = payload.get("status_code"), payload.get("message")
        if not isinstance(message, str) or not message:
            message = f"サーバーでエラーが発生しました（HTTP {exc.code}）。"
        errors = payload.get("errors") if isinstance(payload.get("errors"), dict) else None
        desks = payload.get("desks") if isinstance(payload.get("desks"), list) else None
        return ServerError(
            message,
            status_code=str(code) if code not in (None, "") else f"http_{exc.code}",
            http_status=http_status,
            errors=errors,
            desks=desks,
        )

    def certificate_status(self, serial: str) -> dict[str, Any]:
        return self.get(f"/api/v1/certificates/{_quote(normalize_serial(serial))}/status")

    def create_enrollment(self, fields: Mapping[str, str]) -> dict[str, Any]:
        return self.post("/api/v1/enrollments", dict(fields))

    def confirm_enrollment(self, token: str) -> dict[str, Any]:
        return self.post(f"/api/v1/enrollments/{_quote(token)}/confirm", {})

    def request_certificate(self, token: str, csr_pem: str) -> dict[str, Any]:
        return self.post(f"/api/v1/enrollments/{_quote(token)}/certificate", {"csr": csr_pem})

    def request_renewal_challenge(self, certificate: str) -> dict[str, Any]:
        return self.post("/api/v1/renewals/challenge", {"certificate": certificate})

    def request_renewal(
        self, certificate: str, challenge: str, signature: str, csr_pem: str
    ) -> dict[str, Any]:
        body = {
            "certificate": certificate,
            "challenge": challenge,
            "signature": signature,
            "csr": csr_pem,
        }
        return self.post("/api/v1/renewals", body)


def _quote(token: str) -> str:
    return urllib.parse.quote(token, safe="")


def _as_client(server: str | ApiClient, cafile: str | None) -> ApiClient:
    return server if isinstance(server, ApiClient) else ApiClient(server, cafile=cafile)


def _require_text(payload: Mapping[str, Any], name: str, *, limit: int = 4096) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"「{name}」の指定が正しくありません。")
    return value.strip()


# --------------------------------------------------------------------------- statuses


def local_status(store: AgentStore, info: CertificateInfo, now: datetime) -> str:
    """What the tool knows without the server: expired, renewed here, else unknown."""
    if info.is_expired(now):
        return "expired"
    if store.renewed_by(info.serial):
        return "renewed"
    return "unknown"


def certificate_statuses(
    store: AgentStore,
    infos: Iterable[CertificateInfo],
    client: ApiClient | None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Each certificate's status, from the server where it can be reached."""
    now = now or utc_now()
    reachable = client is not None
    statuses: dict[str, str] = {}
    for info in infos:
        status = None
        if reachable and client is not None:
            try:
                status = client.certificate_status(info.serial).get("status")
            except (NetworkError, BadServerResponse):
                reachable = False
            except AgentError:
                status = None
        if status not in CERTIFICATE_STATUSES or status == "unknown":
            status = local_status(store, info, now)
        statuses[info.serial] = status
    return statuses


def certificates_json(
    store: AgentStore, client: ApiClient | None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``/certificates`` answer: each certificate with its status and where it is installed."""
    now = now or utc_now()
    infos = store.certificates()
    statuses = certificate_statuses(store, infos, client, now)
    return [
        {
            **info.to_json(now),
            "status": statuses[info.serial],
            "installed_in": [target.to_json() for target in store.installed_in(info.serial)],
        }
        for info in infos
    ]


# --------------------------------------------------------------------------- journeys


RETRY_DELAYS_SECONDS = (1.0, 3.0)
ANSWER_LOST_MESSAGE = (
    "サーバーからの応答を受け取れませんでした。作成した鍵と申請の内容は、このパソコンに"
    "保管してあります。ネットワークの接続を確認して、ツールをもう一度起動してください。"
    "同じ鍵で自動的にやり直します。"
)


class AnswerLost(NetworkError):
    """The request was sent and its answer never came; it is kept to be sent again."""

    default_status_code = "agent_answer_lost"

    def __init__(self, message: str = ANSWER_LOST_MESSAGE, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


def _answer_may_be_lost(exc: AgentError) -> bool:
    """No answer, a broken one, or a server error (5xx): the request may have been done."""
    if isinstance(exc, (NetworkError, BadServerResponse)):
        return True
    return isinstance(exc, ServerError) and exc.http_status >= 500


def _send_kept_request(send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``send`` until it is answered; the same request every time (the server is retry-safe)."""
    lost: AgentError | None = None
    last: AgentError | None = None
    for delay in (0.0, *RETRY_DELAYS_SECONDS):
        time.sleep(delay)
        try:
            return send()
        except AgentError as exc:
            if not _answer_may_be_lost(exc):
                exc.after_lost_answer = lost is not None  # type: ignore[attr-defined]
                raise
            last = exc
            if getattr(exc, "request_sent", True):
                lost = exc
    if lost is None and last is not None:
        raise last  # never reached the server (refused, no name, TLS): nothing to lose
    raise AnswerLost() from lost


def _pending_for(store: AgentStore, server: str, **match: str) -> dict[str, Any] | None:
    for entry in store.pending_requests():
        if entry.get("server") == server and all(entry.get(k) == v for k, v in match.items()):
            return entry
    return None


def enroll_with_token(
    server: str | ApiClient, token: str, store: AgentStore, *, cafile: str | None = None
) -> CertificateInfo:
    """New key + CSR for a confirmed enrollment ``token``; the certificate goes into ``store``.

    The key is kept on disk (encrypted) before the CSR is sent; a request for the same token
    that is still waiting for its answer is sent again with its own key and CSR.
    """
    client = _as_client(server, cafile)
    token = _require_text({"token": token}, "token", limit=512)
    store.ensure_writable()
    store.require_passphrase()
    token_id = hashlib.sha256(token.encode("utf-8")).hexdigest()
    pending = _pending_for(store, client.server, kind="enroll", token_id=token_id)
    if pending is None:
        key = generate_private_key()
        request = {"kind": "enroll", "server": client.server, "token_id": token_id}
        request.update({"token": store.seal(token), "csr": build_csr_pem(key)})
        pending = store.save_pending(request, key)
    return _complete_enrollment(client, store, pending)


def _complete_enrollment(
    client: ApiClient, store: AgentStore, pending: dict[str, Any]
) -> CertificateInfo:
    key = store.pending_key(pending)
    try:
        response = _send_kept_request(
            lambda: client.request_certificate(store.unseal(pending["token"]), pending["csr"])
        )
        certificate, chain = parse_issued_certificate(response, key)
    except AnswerLost:
        raise
    except AgentError:
        store.drop_pending(pending)  # refused: the key will never be certified
        raise
    info = store.install(key, certificate, chain)
    store.drop_pending(pending)
    return info


def renew(
    server: str | ApiClient, serial: str, store: AgentStore, *, cafile: str | None = None
) -> CertificateInfo:
    """Renew the held certificate ``serial``: prove its key, get one for a new key, keep both.

    As for enrollment, the new key is kept on disk before the CSR is sent, and a renewal of
    ``serial`` still waiting for its answer is sent again instead of starting another.
    """
    client = _as_client(server, cafile)
    serial = normalize_serial(serial)
    store.ensure_writable()
    held = store.load(serial)
    pending = _pending_for(store, client.server, kind="renew", serial=serial)
    if pending is not None:
        return _complete_renewal(client, store, pending, resumed=True)
    held_pem = certificate_pem(held.certificate)
    challenge, signature = _signed_challenge(client, held, held_pem)
    key = generate_private_key()
    request = {"kind": "renew", "server": client.server, "serial": serial, "certificate": held_pem}
    request.update({"challenge": challenge, "signature": store.seal(signature)})
    request["csr"] = build_csr_pem(key)
    pending = store.save_pending(request, key)
    return _complete_renewal(client, store, pending)


def _signed_challenge(client: ApiClient, held: StoredCredential, held_pem: str) -> tuple[str, str]:
    challenge = client.request_renewal_challenge(held_pem).get("challenge")
    if not isinstance(challenge, str) or not challenge:
        raise BadServerResponse()
    return challenge, sign_challenge(held.key, challenge)


def _complete_renewal(
    client: ApiClient, store: AgentStore, pending: dict[str, Any], *, resumed: bool = False
) -> CertificateInfo:
    key = store.pending_key(pending)

    def send() -> dict[str, Any]:
        return client.request_renewal(
            pending["certificate"],
            pending["challenge"],
            store.unseal(pending["signature"]),
            pending["csr"],
        )

    try:
        try:
            response = _send_kept_request(send)
        except ServerError as refused:
            # After a lost answer the challenge may be spent or expired: prove the held key
            # again with a new challenge, and ask again for the same new key (same CSR).
            if not (resumed or getattr(refused, "after_lost_answer", False)):
                raise
            held = store.load(pending["serial"])
            challenge, signature = _signed_challenge(client, held, pending["certificate"])
            store.update_pending(pending, challenge=challenge, signature=store.seal(signature))
            response = _send_kept_request(send)
        certificate, chain = parse_issued_certificate(response, key)
    except AnswerLost:
        raise
    except AgentError:
        store.drop_pending(pending)
        raise
    info = store.install(key, certificate, chain)
    store.record_renewal(pending["serial"], info.serial)
    store.drop_pending(pending)
    return info


@dataclass
class Resumed:
    """A kept request sent again: the certificate it got, or why it failed."""

    kind: str
    renewed: str | None = None
    info: CertificateInfo | None = None
    error: AgentError | None = None


def resume_pending(client: ApiClient, store: AgentStore) -> list[Resumed]:
    """Send again every request to this server still waiting for its answer."""
    results = []
    for pending in store.pending_requests():
        if pending.get("server") != client.server:
            continue
        kind = str(pending["kind"])
        renewed = str(pending.get("serial")) if kind == "renew" else None
        try:
            if kind == "enroll":
                info = _complete_enrollment(client, store, pending)
            else:
                info = _complete_renewal(client, store, pending, resumed=True)
        except AgentError as exc:
            results.append(Resumed(kind, renewed, error=exc))
            continue
        results.append(Resumed(kind, renewed, info=info))
    return results


# --------------------------------------------------------------------------- local server


class _Rejected(Exception):
    def __init__(self, http_status: int, payload: dict[str, Any]) -> None:
        super().__init__(http_status)
        self.http_status = http_status
        self.payload = payload


class AgentHTTPServer(ThreadingHTTPServer):
    """The local server, on 127.0.0.1 only, answering the kihonet site's pages."""

    allow_reuse_address = os.name != "nt"  # on Windows SO_REUSEADDR lets others steal the port
    daemon_threads = True

    def __init__(
        self,
        port: int,
        *,
        server_url: str,
        store: AgentStore,
        cafile: str | None = None,
        backend: StoreBackend | None = None,
    ) -> None:
        self.server_url = validate_server_url(server_url)
        self.allowed_origin = server_origin(self.server_url)
        self.cafile = cafile
        self.client = ApiClient(self.server_url, cafile=cafile)
        self.store = store
        self.backend = backend
        super().__init__((LISTEN_HOST, port), AgentRequestHandler)

    def server_bind(self) -> None:
        if os.name == "nt" and hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        super().server_bind()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})


def _route_status(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "ready",
        "message": READY_MESSAGE,
        "version": __version__,
        "server": server.server_url,
    }


def _route_certificates(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"certificates": certificates_json(server.store, server.client)}


def _route_enroll(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    token = _require_text(body, "token", limit=512)
    info = enroll_with_token(server.client, token, server.store)
    outcome = install_certificate(server.store, info.serial, backend=server.backend)
    print(f"{ENROLL_DONE_MESSAGE}（シリアル番号：{info.serial}）", flush=True)
    print_install_outcome(server.store, info.serial, outcome)
    return {**info.issued_summary(), **outcome.to_json()}


def _route_renew(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    serial = normalize_serial(_require_text(body, "serial", limit=64))
    info = renew(server.client, serial, server.store)
    outcome = install_certificate(
        server.store, info.serial, backend=server.backend, replaces=serial
    )
    print(f"{RENEW_DONE_MESSAGE}（シリアル番号：{info.serial}）", flush=True)
    print_install_outcome(server.store, info.serial, outcome)
    return {**info.issued_summary(), **outcome.to_json()}


def _route_install(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    serial = normalize_serial(_require_text(body, "serial", limit=64))
    info = CertificateInfo.from_certificate(server.store.load(serial).certificate)
    outcome = install_certificate(server.store, serial, backend=server.backend)
    return {**info.issued_summary(), **outcome.to_json()}


def _route_auto_renew_state(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    scheduler = Scheduler(os.environ)
    return {"enabled": scheduler.is_enabled(), "platform": scheduler.platform}


def _route_auto_renew(server: AgentHTTPServer, body: Mapping[str, Any]) -> dict[str, Any]:
    """``{"enable": true, "consent": true}``: the customer pressed 「自動更新を設定する」 under the
    page's explanation (the consent the command line asks for); ``{"enable": false}``: off."""
    enable = body.get("enable")
    if not isinstance(enable, bool):
        raise BadRequest("リクエストの形式が正しくありません。")
    scheduler = Scheduler(os.environ)
    if enable:
        if body.get("consent") is not True:
            raise BadRequest(AUTO_RENEW_NO_CONSENT, status_code="agent_consent_required")
        where, reports = enable_auto_renewal(scheduler, server.client, server.store, server.cafile)
        print(where, flush=True)
    else:
        reports = disable_auto_renewal(scheduler, server.store, server.client)
    message = check_in_summary(reports, enable)
    print(message, flush=True)
    print_check_ins(reports, enable)
    return {"enabled": scheduler.is_enabled(), "message": message, "reports": reports}


ROUTES: dict[tuple[str, str], Callable[[AgentHTTPServer, Mapping[str, Any]], dict[str, Any]]] = {
    ("GET", "/status"): _route_status,
    ("GET", "/certificates"): _route_certificates,
    ("POST", "/enroll"): _route_enroll,
    ("POST", "/renew"): _route_renew,
    ("POST", "/install"): _route_install,
    ("GET", "/auto-renew"): _route_auto_renew_state,
    ("POST", "/auto-renew"): _route_auto_renew,
}
KNOWN_PATHS = frozenset(path for _, path in ROUTES)


class AgentRequestHandler(BaseHTTPRequestHandler):
    """Origin + Host checked on every request, CORS for the site's origin only."""

    server: AgentHTTPServer
    server_version = f"kihonet-agent/{__version__}"
    sys_version = ""
    timeout = 30

    # http.server's method names
    def do_OPTIONS(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the customer's console."""

    @property
    def route_path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _handle(self) -> None:
        try:
            self._dispatch()
        except _Rejected as rejected:
            self._send_json(rejected.http_status, rejected.payload)
        except AgentError as exc:
            self._send_json(exc.http_status, exc.to_json())
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._send_json(
                500,
                {
                    "status_code": "agent_internal",
                    "message": "予期しないエラーが発生しました。",
                },
            )

    def _dispatch(self) -> None:
        if not self._request_allowed():
            self._send_json(403, {"error": "forbidden"}, cors=False)
            return
        if self.command == "OPTIONS":
            self._send_preflight()
            return
        route = ROUTES.get((self.command, self.route_path))
        if route is None:
            raise _Rejected(404, {"error": "not_found"})
        body = self._read_json() if self.command == "POST" else {}
        self._send_json(200, route(self.server, body))

    def _request_allowed(self) -> bool:
        origin = self.headers.get("Origin", "")
        host = self.headers.get("Host", "").strip().lower()
        return origin == self.server.allowed_origin and host in self.server.allowed_hosts

    def _send_preflight(self) -> None:
        if self.route_path not in KNOWN_PATHS:
            raise _Rejected(404, {"error": "not_found"})
        self.send_response(204)
        self._send_cors_headers()
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        if self.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_cors_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.server.allowed_origin)
        self.send_header("Vary", "Origin")

    def _read_json(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            raise _Rejected(411, {"error": "length_required"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise _Rejected(400, BadRequest("リクエストの形式が正しくありません。").to_json())
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise _Rejected(413, {"error": "payload_too_large"})
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = self.rfile.read(length) if length else b""
        if content_type != "application/json":
            raise _Rejected(415, BadRequest("JSON で送信してください。").to_json())
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise _Rejected(400, BadRequest("リクエストの形式が正しくありません。").to_json())
        return body

    def _drain(self, length: int) -> None:
        """Read (and drop) a too-large body so the client can still read the 413."""
        remaining = min(length, MAX_DRAIN_BYTES)
        with contextlib.suppress(OSError):
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)

    def _send_json(self, status: int, payload: Mapping[str, Any], *, cors: bool = True) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if cors:
            self._send_cors_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_server(
    server_url: str,
    store: AgentStore,
    *,
    port: int = DEFAULT_PORT,
    cafile: str | None = None,
    backend: StoreBackend | None = None,
) -> AgentHTTPServer:
    """The local server, bound and listening (``port=0`` picks a free port)."""
    return AgentHTTPServer(port, server_url=server_url, store=store, cafile=cafile, backend=backend)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_server(
    server_url: str,
    store: AgentStore,
    *,
    port: int = DEFAULT_PORT,
    cafile: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM, printing 「受付を開始しました。」 (R13) once ready."""
    out = out or sys.stdout
    try:
        httpd = make_server(server_url, store, port=port, cafile=cafile)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise AgentError(
                f"ポート {port} は使用中です。ツールが既に起動していないか確認してください。",
                status_code="agent_port_in_use",
            ) from exc
        raise
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(f"証明書取得クライアントツール {__version__}", file=out)
        print(f"接続先サーバー：{httpd.server_url}", file=out)
        print(f"受付アドレス：http://{LISTEN_HOST}:{httpd.port}", file=out)
        print("終了するには Ctrl+C を押してください。", file=out)
        print(READY_MESSAGE, file=out, flush=True)
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        print(STOPPED_MESSAGE, file=out, flush=True)


# --------------------------------------------------------------------------- prompts


def _ask(prompt: Callable[[str], str], text: str) -> str:
    try:
        return prompt(text)
    except EOFError as exc:
        raise AgentError("入力がありませんでした。", status_code="agent_no_input") from exc


KEYRING_SERVICE = "kihonet-agent"
NO_KEYRING_NOTICE = (
    "このパソコンには、パスワードを安全に保管する仕組み（キーリング）が見つかりませんでした。"
    "そのため、証明書の保管用パスワードを使います。このパスワードは、このパソコンに保管する"
    "クライアント証明書とその秘密鍵を保護するものです。証明書の更新の際にも同じパスワードが"
    "必要になりますので、忘れないようにしてください。"
)


def _is_trusted_keyring(backend: Any, explicit: bool) -> bool:
    """A real OS keyring: not keyring's ``fail``/``null``, and one keyring itself recommends.

    keyring rates the OS keyrings (Windows Credential Manager, macOS Keychain, Secret
    Service) 1 and above; files like keyrings.alt's plaintext one rate below 1 and are used
    only when chosen explicitly (``PYTHON_KEYRING_BACKEND`` or keyring's configuration file).
    """
    module = type(backend).__module__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return False
    chained = getattr(backend, "backends", None)
    if module.startswith("keyring.backends.chainer"):
        return any(_is_trusted_keyring(b, explicit) for b in chained or ())
    return explicit or float(getattr(backend, "priority", 0)) >= 1


def store_keyring(environ: Mapping[str, str] | None = None) -> Any | None:
    """The OS keyring through the ``keyring`` library, or None where there is none."""
    environ = os.environ if environ is None else environ
    try:
        import keyring
        import keyring.util.platform_
    except ImportError:  # the single-file script on a PC without ``keyring``
        return None
    try:
        backend = keyring.get_keyring()
        config = Path(keyring.util.platform_.config_root()) / "keyringrc.cfg"
        explicit = bool(environ.get("PYTHON_KEYRING_BACKEND")) or config.is_file()
    except Exception:  # any failure of the keyring means: no keyring
        return None
    return backend if _is_trusted_keyring(backend, explicit) else None


def keyring_secret(backend: Any, store: AgentStore) -> str | None:
    """The store's random secret from the keyring, made and kept there on first use.

    None when the store was already protected by a password of the user's (an earlier
    version of the tool) or the keyring fails: then the password is asked for as before.
    """
    name = str(store.path.expanduser().resolve())
    try:
        secret = backend.get_password(KEYRING_SERVICE, name)
        if secret:
            return str(secret)
        if store.has_keys():
            return None
        secret = secrets.token_urlsafe(32)
        backend.set_password(KEYRING_SERVICE, name, secret)
        return str(backend.get_password(KEYRING_SERVICE, name) or "") or None
    except Exception:  # a locked or broken keyring: fall back to the password
        return None


def obtain_passphrase(
    store: AgentStore,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """The secret protecting ``store`` (sets ``store.passphrase``).

    From the OS keyring where there is one (a random secret, made on first use: no password
    to remember).  Elsewhere ``KIHONET_AGENT_PASSPHRASE`` or a prompt (twice for a new store),
    after saying what the password protects and that renewal needs it again.
    """
    environ = os.environ if environ is None else environ
    backend = store_keyring(environ)
    secret = keyring_secret(backend, store) if backend is not None else None
    if secret is not None:
        store.passphrase = secret
        store.verify_passphrase()
        return secret
    print(NO_KEYRING_NOTICE, file=sys.stderr)
    if ENV_PASSPHRASE in environ:
        if not environ[ENV_PASSPHRASE]:
            raise WrongPassphrase(
                f"環境変数 {ENV_PASSPHRASE} が空です。パスワードを設定してください。"
            )
        store.passphrase = environ[ENV_PASSPHRASE]
        store.verify_passphrase()
        return store.passphrase
    if not store.has_keys():
        store.passphrase = _prompt_new_passphrase(prompt)
        return store.passphrase
    return _prompt_existing_passphrase(store, prompt)


def _prompt_existing_passphrase(store: AgentStore, prompt: Callable[[str], str]) -> str:
    """The password of a store that holds keys, asked until right (PROMPT_ATTEMPTS times)."""
    for _ in range(PROMPT_ATTEMPTS):
        store.passphrase = _ask(prompt, "証明書の保管用パスワードを入力してください：")
        if not store.passphrase:
            print("パスワードを入力してください。", file=sys.stderr)
            continue
        try:
            store.verify_passphrase()
        except WrongPassphrase:
            print("パスワードが正しくありません。", file=sys.stderr)
            continue
        return store.passphrase
    store.passphrase = None
    raise WrongPassphrase("パスワードが正しくありません。")


def _prompt_new_passphrase(prompt: Callable[[str], str]) -> str:
    for _ in range(PROMPT_ATTEMPTS):
        first = _ask(prompt, "証明書の保管用パスワードを決めて入力してください：")
        if not first:
            print("パスワードを入力してください。", file=sys.stderr)
            continue
        if _ask(prompt, "確認のため、もう一度入力してください：") == first:
            return first
        print("パスワードが一致しません。", file=sys.stderr)
    raise WrongPassphrase("パスワードを設定できませんでした。")


def ask_yes_no(text: str, *, prompt: Callable[[str], str] = input) -> bool:
    try:
        answer = prompt(text)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes", "はい")


def choose_certificate(
    choices: list[CertificateInfo], *, prompt: Callable[[str], str] = input
) -> CertificateInfo:
    """Ask which certificate to renew when the store holds several."""
    if not choices:
        raise CertificateNotFound("更新できる証明書がありません。")
    if len(choices) == 1:
        return choices[0]
    print("更新する証明書を選んでください。")
    for number, info in enumerate(choices, start=1):
        print(f"  {number}) {info.describe()}")
    for _ in range(PROMPT_ATTEMPTS):
        answer = _ask(prompt, "番号を入力してください：").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return choices[int(answer) - 1]
        print("一覧の番号を入力してください。", file=sys.stderr)
    raise BadRequest("更新する証明書が選ばれませんでした。")


# --------------------------------------------------------------------------- auto-renewal
#
# ``auto-renew run`` asks the server when to renew each held certificate (renewal-info), reports
# with a signed check-in that auto-renewal is on, renews once the suggested window has opened,
# installs the new certificate and removes the renewed one.  It never prompts; one run at a time
# (a lock file in the tool's folder).  ``auto-renew --enable`` registers a daily + at-log-on run.

ENV_RETRY_ATTEMPTS = "KIHONET_AGENT_RETRY_ATTEMPTS"
ENV_RETRY_BASE = "KIHONET_AGENT_RETRY_BASE_SECONDS"
RETRY_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 600.0
AUTO_RENEW_LOG = "auto-renew.log"
AUTO_RENEW_LOCK = "auto-renew.lock"
DESK_ACTION = "自動更新できませんでした。お問い合わせ窓口（サービスデスク）にお問い合わせください。"
ALREADY_RUNNING_MESSAGE = "自動更新は別の処理で実行中です。"


def report_message(challenge: str, enabled: bool) -> str:
    """What is signed for the check-in (the server's ``renewal_info.report_message``)."""
    return f"kihonet-auto-renewal:{'on' if enabled else 'off'}:{challenge}"


def report_auto_renewal(client: ApiClient, held: StoredCredential, enabled: bool) -> None:
    """The signed check-in: auto-renewal is on (or off) on this PC for ``held``."""
    held_pem = certificate_pem(held.certificate)
    answer = client.post(
        "/api/v1/renewals/challenge", {"certificate": held_pem, "purpose": "auto_renewal_report"}
    )
    challenge = answer.get("challenge")
    if not isinstance(challenge, str) or not challenge:
        raise BadServerResponse()
    body = {
        "certificate": held_pem,
        "challenge": challenge,
        "signature": sign_challenge(held.key, report_message(challenge, enabled)),
        "enabled": enabled,
    }
    serial = format_serial(held.certificate.serial_number)
    client.post(f"/api/v1/certificates/{_quote(serial)}/auto-renewal", body)


def with_retries(
    action: Callable[[], Any],
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``action`` again after transient failures (network, 5xx), with back-off and jitter."""
    environ = os.environ if environ is None else environ
    try:
        attempts = max(1, int(environ.get(ENV_RETRY_ATTEMPTS) or RETRY_ATTEMPTS))
        base = max(0.0, float(environ.get(ENV_RETRY_BASE) or RETRY_BASE_SECONDS))
    except ValueError:
        attempts, base = RETRY_ATTEMPTS, RETRY_BASE_SECONDS
    for attempt in range(attempts):
        try:
            return action()
        except AgentError as exc:
            if not _answer_may_be_lost(exc) or attempt == attempts - 1:
                raise
        delay = min(RETRY_CAP_SECONDS, base * 2**attempt)
        sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def random_moment(start: datetime, end: datetime, rng: random.Random | None = None) -> datetime:
    """A uniformly random moment in ``[start, end)`` (RFC 9773: the client renews at a random
    time inside the suggested window, so that the PCs of one wave do not all come at once)."""
    seconds = int((end - start).total_seconds())
    if seconds <= 0:
        return start
    offset = (rng or random.SystemRandom()).randrange(seconds)
    return start + timedelta(seconds=offset)


def auto_renew_one(
    client: ApiClient,
    store: AgentStore,
    info: CertificateInfo,
    backend: StoreBackend | None,
    now: datetime,
    choose: Callable[[datetime, datetime], datetime] = random_moment,
) -> dict[str, Any]:
    """One held certificate: the log entry of what was done (``result``) and what comes next.

    It renews at its first run after the moment ``choose`` picked inside the server's suggested
    window; the moment is kept, and picked again only when the server moves the window."""
    entry: dict[str, Any] = {"at": isoformat_utc(now), "serial": info.serial}
    try:
        answer = with_retries(
            lambda: client.get(f"/api/v1/certificates/{_quote(info.serial)}/renewal-info")
        )
        status = answer.get("status")
        if status != "valid":
            return {**entry, "result": "refused", "status": status, "action": DESK_ACTION}
        held = store.load(info.serial)
        try:
            with_retries(lambda: report_auto_renewal(client, held, True))
        except (ServerError, BadServerResponse) as exc:  # the check-in never blocks a renewal
            entry["check_in_error"] = exc.status_code
        window = answer.get("suggestedWindow") or {}
        start = _parse_moment(window.get("start"))
        if start is None:
            return {**entry, "result": "no_window", "status": status}
        end = max(start, _parse_moment(window.get("end")) or start)
        moment = store.renewal_moment(info.serial, start, end, choose)
        if now < moment:
            return {**entry, "result": "waiting", "next_check": isoformat_utc(moment)}
        new = with_retries(lambda: renew(client, info.serial, store))
    except AgentError as exc:
        result = "failed" if _answer_may_be_lost(exc) else "refused"
        entry.update({"result": result, "status_code": exc.status_code, "message": exc.message})
        if result == "refused":
            entry["action"] = DESK_ACTION
            if exc.desks:
                entry["desks"] = exc.desks
        return entry
    entry.update({"result": "renewed", "new_serial": new.serial})
    entry["not_after"] = isoformat_utc(new.not_after)
    if backend is not None:
        outcome = install_certificate(store, new.serial, backend=backend, replaces=info.serial)
        entry.update(outcome.to_json())
    return entry


@contextlib.contextmanager
def run_lock(store: AgentStore) -> Any:
    """Held for the whole run; yields False when another run holds it (no waiting)."""
    store.create()
    handle = open(store.path / AUTO_RENEW_LOCK, "a+b")
    try:
        try:
            if sys.platform == "win32":  # (a check mypy narrows by, unlike os.name)
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        handle.close()


def append_run_log(store: AgentStore, entries: Iterable[Mapping[str, Any]]) -> None:
    with open(store.path / AUTO_RENEW_LOG, "a", encoding="utf-8") as log:
        for entry in entries:
            log.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def read_run_log(store: AgentStore) -> list[dict[str, Any]]:
    try:
        lines = (store.path / AUTO_RENEW_LOG).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def _no_prompt(text: str) -> str:
    raise WrongPassphrase(
        "自動更新ではパスワードを入力できません。"
        f"キーリングか環境変数 {ENV_PASSPHRASE} でパスワードを設定してください。"
    )


AUTO_RENEW_RESULT_LABELS = {
    "renewed": "更新しました",
    "waiting": "更新推奨期間の前です",
    "no_window": "更新の対象ではありません",
    "refused": "更新できません",
    "failed": "サーバーに接続できませんでした（次回の実行でやり直します）",
}


def auto_renewed_certificates(store: AgentStore, now: datetime) -> list[CertificateInfo]:
    """What auto-renewal looks after: every held certificate valid at ``now``, not yet renewed."""
    return [
        info
        for info in store.renewable_certificates()
        if not info.is_expired(now) and not store.renewed_by(info.serial)
    ]


def auto_renew_run(
    client: ApiClient, store: AgentStore, backend: StoreBackend | None
) -> list[dict[str, Any]] | None:
    """Every held certificate that is valid and not yet renewed; None when another run holds
    the lock."""
    with run_lock(store) as locked:
        if not locked:
            return None
        obtain_passphrase(store, prompt=_no_prompt)
        with_retries(lambda: resume_pending(client, store))
        now = utc_now()
        entries = [
            auto_renew_one(client, store, info, backend, now)
            for info in auto_renewed_certificates(store, now)
        ]
        append_run_log(store, entries)
        return entries


# -- the schedulers: a daily and at-log-on run for the current user, without admin rights

TASK_NAME = "kihonet-auto-renew"
WINDOWS_TASKS = ("kihonet\\auto-renew-daily", "kihonet\\auto-renew-logon")
LAUNCH_AGENT_LABEL = "jp.kihonet.auto-renew"
AUTO_RENEW_CONSENT = (
    "自動更新を有効にします。このパソコンにログオンしたときと1日1回、"
    "証明書取得クライアントツールが企保ネットに証明書の更新時期を問い合わせ、"
    "自動更新が有効であることを企保ネットに知らせます。更新推奨期間になった証明書は自動で更新し、"
    "新しい証明書をブラウザーの証明書ストアに入れ、古い証明書を取り除きます。"
    "パスワードの入力は求めません。管理者権限は不要です。"
    "自動更新を有効にしますか？ [y/N]："
)


def _platform(environ: Mapping[str, str]) -> str:
    detected = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
    return (environ.get(ENV_PLATFORM) or "").strip().lower() or detected


def _config_home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("XDG_CONFIG_HOME") or _home(environ) / ".config")


def _run_command(server: str, store: AgentStore, cafile: str | None) -> list[str]:
    if getattr(sys, "frozen", False):  # the PyInstaller build: the executable is the tool
        command = [sys.executable, "auto-renew", "run"]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "auto-renew", "run"]
    command += ["--server", server, "--store", str(store.path.resolve())]
    return command + (["--cafile", str(Path(cafile).resolve())] if cafile else [])


def _quote_windows(argv: list[str]) -> str:
    return subprocess.list2cmdline(argv)


def _call(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - fixed system commands, no shell
            argv, capture_output=True, text=True, timeout=STORE_TOOL_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AgentError(
            f"自動更新を登録できませんでした（{argv[0]}：{exc}）。", status_code="agent_schedule"
        ) from exc


def _checked(argv: list[str]) -> None:
    result = _call(argv)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[:500]
        raise AgentError(
            f"自動更新を登録できませんでした（{argv[0]}：{detail}）。", status_code="agent_schedule"
        )


class Scheduler:
    """Where the runs are registered: files written and the system's commands called."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.platform = _platform(environ)

    # Linux
    @property
    def systemd_dir(self) -> Path:
        return _config_home(self.environ) / "systemd" / "user"

    @property
    def autostart_file(self) -> Path:
        return _config_home(self.environ) / "autostart" / f"{TASK_NAME}.desktop"

    @property
    def launch_agent(self) -> Path:
        return _home(self.environ) / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def files(self) -> list[Path]:
        if self.platform == "linux":
            return [
                self.systemd_dir / f"{TASK_NAME}.service",
                self.systemd_dir / f"{TASK_NAME}.timer",
                self.autostart_file,
            ]
        if self.platform == "macos":
            return [self.launch_agent]
        return []

    def enable(self, command: list[str]) -> str:
        if self.platform == "windows":
            line = _quote_windows(command)
            daily, logon = WINDOWS_TASKS
            create = ["schtasks", "/Create", "/F"]
            _checked([*create, "/SC", "DAILY", "/ST", "12:00", "/TN", daily, "/TR", line])
            _checked([*create, "/SC", "ONLOGON", "/TN", logon, "/TR", line])
            return "Windows のタスク スケジューラ（毎日とログオン時）に登録しました。"
        if self.platform == "macos":
            self.launch_agent.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.launch_agent, _launch_agent_plist(command))
            _call(["launchctl", "unload", "-w", str(self.launch_agent)])
            _checked(["launchctl", "load", "-w", str(self.launch_agent)])
            return f"LaunchAgent（{self.launch_agent}）を登録しました。"
        exec_line = " ".join(_systemd_quote(part) for part in command)
        if shutil.which("systemctl", path=self.environ.get("PATH")):
            self.systemd_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.systemd_dir / f"{TASK_NAME}.service", _service_unit(exec_line))
            atomic_write(self.systemd_dir / f"{TASK_NAME}.timer", _timer_unit())
            _checked(["systemctl", "--user", "daemon-reload"])
            _checked(["systemctl", "--user", "enable", "--now", f"{TASK_NAME}.timer"])
            return f"systemd のユーザー タイマー（{TASK_NAME}.timer）を登録しました。"
        self.autostart_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.autostart_file, _desktop_entry(exec_line))
        return f"ログオン時の自動起動（{self.autostart_file}）を登録しました。"

    def disable(self) -> None:
        if self.platform == "windows":
            for name in WINDOWS_TASKS:
                _call(["schtasks", "/Delete", "/F", "/TN", name])
            return
        if self.platform == "macos" and self.launch_agent.exists():
            _call(["launchctl", "unload", "-w", str(self.launch_agent)])
        timer = self.systemd_dir / f"{TASK_NAME}.timer"
        if (
            self.platform == "linux"
            and timer.exists()
            and shutil.which("systemctl", path=self.environ.get("PATH"))
        ):
            _call(["systemctl", "--user", "disable", "--now", f"{TASK_NAME}.timer"])
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.platform == "linux" and shutil.which("systemctl", path=self.environ.get("PATH")):
            _call(["systemctl", "--user", "daemon-reload"])

    def next_run(self) -> str | None:
        """When the system's scheduler itself runs the tool next, as it says it; None where it
        does not say (macOS, the XDG autostart entry, a scheduler that cannot be asked)."""
        with contextlib.suppress(AgentError):
            if self.platform == "windows":
                query = ["schtasks", "/Query", "/TN", WINDOWS_TASKS[0], "/FO", "CSV", "/NH"]
                result = _call(query)
                answer = result.stdout if result.returncode == 0 else ""
                for row in csv.reader(
                    io.StringIO(answer)
                ):  # "TaskName","Next Run Time","Status" in the system's language
                    if len(row) >= 2 and row[1].strip() and row[1].strip() != "N/A":
                        return row[1].strip()
                return None
            timer = f"{TASK_NAME}.timer"
            if (
                self.platform == "linux"
                and (self.systemd_dir / timer).exists()
                and shutil.which("systemctl", path=self.environ.get("PATH"))
            ):
                show = ["systemctl", "--user", "show", timer, "-p", "NextElapseUSecRealtime"]
                result = _call([*show, "--value"])
                text = result.stdout.strip() if result.returncode == 0 else ""
                return _systemd_moment(text) if text and text not in ("n/a", "0") else None
        return None

    def is_enabled(self) -> bool:
        if self.platform == "windows":
            return all(
                _call(["schtasks", "/Query", "/TN", name]).returncode == 0 for name in WINDOWS_TASKS
            )
        return any(path.exists() for path in self.files())


AUTO_RENEW_ENABLED_MESSAGE = "自動更新を設定しました。"
AUTO_RENEW_DISABLED_MESSAGE = "自動更新を解除しました。"
AUTO_RENEW_NO_CONSENT = (
    "自動更新は設定していません。説明をお読みのうえ、[自動更新を設定する]をクリックしてください。"
)


NO_KEYRING_FOR_AUTO_RENEWAL = (
    "自動更新を設定できませんでした。自動更新ではパスワードを入力できないため、"
    "証明書の保管用パスワードをこのパソコンのキーリング（パスワードを安全に保管する仕組み）から"
    "読めることが必要ですが、このパソコンにはキーリングが見つかりませんでした。"
    "クライアント証明書は、更新推奨期間になったら「クライアント証明書の更新」ページで更新してください。"
)
KEYRING_LACKS_THE_STORE = (
    "自動更新を設定できませんでした。自動更新ではパスワードを入力できないため、"
    "証明書の保管用パスワードがこのパソコンのキーリング（パスワードを安全に保管する仕組み）に"
    "保存されている必要がありますが、保存されていませんでした。"
    "ツールのフォルダーで「auto-renew --enable」を実行すると、保管用パスワードを一度だけ入力して"
    "キーリングに保存し、自動更新を設定できます。"
    "または、更新推奨期間になったら「クライアント証明書の更新」ページで更新してください。"
)
SAVING_TO_KEYRING_NOTICE = (
    "自動更新ではパスワードを入力できないため、証明書の保管用パスワードを"
    "このパソコンのキーリング（パスワードを安全に保管する仕組み）に保存します。"
)
CHECK_IN_FAILED_ON = "ただし、企保ネットへの通知に失敗した証明書があります。次回の自動実行のときに、あらためて通知します。"
CHECK_IN_FAILED_OFF = (
    "ただし、企保ネットへの通知に失敗した証明書があります。このパソコンの自動更新は解除されています。"
    "企保ネットに知らせるには、しばらくしてから、"
    "ツールのフォルダーで「auto-renew --disable」を実行してください。"
)


def unattended_passphrase(store: AgentStore, environ: Mapping[str, str] | None = None) -> str:
    """The secret a scheduled run will open ``store`` with: from the keyring only, since the run
    cannot prompt and the scheduler passes no ``KIHONET_AGENT_PASSPHRASE``.  Refuses (in
    Japanese, saying what to do) where the keyring does not hold it."""
    backend = store_keyring(environ)
    secret = keyring_secret(backend, store) if backend is not None else None
    if secret is None:
        message = NO_KEYRING_FOR_AUTO_RENEWAL if backend is None else KEYRING_LACKS_THE_STORE
        raise AgentError(message, status_code="agent_no_keyring", http_status=409)
    AgentStore(store.path, secret).verify_passphrase()
    return secret


def keep_passphrase_for_unattended(
    store: AgentStore,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """``auto-renew --enable`` on the command line, where the customer is present: a store
    protected by the customer's own password (made before there was a keyring) gets that
    password saved in the keyring once, asked for here (or ``KIHONET_AGENT_PASSPHRASE``), so
    that the scheduled runs can open it; where there is no keyring at all it refuses as
    ``unattended_passphrase`` does."""
    environ = os.environ if environ is None else environ
    backend = store_keyring(environ)
    if backend is None or keyring_secret(backend, store) is not None:
        return unattended_passphrase(store, environ)
    print(SAVING_TO_KEYRING_NOTICE, file=sys.stderr)
    if environ.get(ENV_PASSPHRASE):
        store.passphrase = environ[ENV_PASSPHRASE]
        store.verify_passphrase()
    else:
        _prompt_existing_passphrase(store, prompt)
    name = str(store.path.expanduser().resolve())
    backend.set_password(KEYRING_SERVICE, name, store.passphrase)
    return unattended_passphrase(store, environ)


def report_auto_renewals(
    client: ApiClient, store: AgentStore, enabled: bool
) -> list[dict[str, Any]]:
    """The signed check-in (on or off) for each certificate auto-renewal looks after, once each
    and without retries (the customer waits); what each gave."""
    reports: list[dict[str, Any]] = []
    for info in auto_renewed_certificates(store, utc_now()):
        try:
            report_auto_renewal(client, store.load(info.serial), enabled)
        except AgentError as exc:
            reports.append(
                {
                    "serial": info.serial,
                    "reported": False,
                    "status_code": exc.status_code,
                    "message": exc.message,
                }
            )
            continue
        reports.append({"serial": info.serial, "reported": True})
    return reports


def check_in_summary(reports: list[dict[str, Any]], enabled: bool) -> str:
    """What the page and the console say after 「自動更新を設定する」/「自動更新を解除」."""
    done = AUTO_RENEW_ENABLED_MESSAGE if enabled else AUTO_RENEW_DISABLED_MESSAGE
    if all(report["reported"] for report in reports):
        return done
    return done + (CHECK_IN_FAILED_ON if enabled else CHECK_IN_FAILED_OFF)


def enable_auto_renewal(
    scheduler: Scheduler, client: ApiClient, store: AgentStore, cafile: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Register the daily and at-log-on run, once the customer consented (the command line's
    prompt or the page's button), then send the signed "on" check-ins at once, so that the desk
    sees it on before the first run (a failed one is said, the registration stays).  Refuses
    before registering anything where a scheduled run could not open the store (no keyring
    holding its secret).  Says where it was registered, and what each check-in gave."""
    keyed = AgentStore(store.path, unattended_passphrase(store))
    message = scheduler.enable(_run_command(client.server, store, cafile))
    store.record_auto_renew_server(client.server, cafile)
    return message, report_auto_renewals(client, keyed, True)


def disable_auto_renewal(
    scheduler: Scheduler, store: AgentStore, client: ApiClient | None
) -> list[dict[str, Any]]:
    """Remove the registration, then tell the server with a signed "off" check-in for each
    certificate held; what each check-in gave."""
    scheduler.disable()
    return [] if client is None else report_auto_renewals(client, store, False)


def _systemd_moment(text: str) -> str:
    """systemd's ``Wed 2026-12-02 03:00:00 UTC`` in Japan time; other zones as systemd says."""
    try:
        moment = datetime.strptime(text, "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    except ValueError:
        return text
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def _systemd_quote(part: str) -> str:
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _service_unit(exec_line: str) -> bytes:
    return (
        "[Unit]\nDescription=kihonet client certificate auto-renewal\n"
        "After=network-online.target\n\n"
        f"[Service]\nType=oneshot\nExecStart={exec_line}\n"
    ).encode()


def _timer_unit() -> bytes:
    return (
        b"[Unit]\nDescription=kihonet client certificate auto-renewal (daily and at log-on)\n\n"
        b"[Timer]\nOnStartupSec=5min\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n\n"
        b"[Install]\nWantedBy=timers.target\n"
    )


def _desktop_entry(exec_line: str) -> bytes:
    return (
        "[Desktop Entry]\nType=Application\nName=kihonet auto-renewal\n"
        f"Exec={exec_line}\nTerminal=false\nNoDisplay=true\n"
    ).encode()


def _launch_agent_plist(command: list[str]) -> bytes:
    import plistlib

    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": command,
            "RunAtLoad": True,
            "StartCalendarInterval": {"Hour": 12, "Minute": 0},
        }
    )


def _print_run(entries: list[dict[str, Any]]) -> None:
    if not entries:
        print("自動更新の対象となる証明書はありません。")
    for entry in entries:
        label = AUTO_RENEW_RESULT_LABELS.get(str(entry.get("result")), str(entry.get("result")))
        print(f"シリアル番号：{entry.get('serial')}  {label}")
        if entry.get("new_serial"):
            print(f"  新しいシリアル番号：{entry['new_serial']}")
        if entry.get("message"):
            print(f"  {entry['message']}（ステータスコード：{entry.get('status_code')}）")
        if entry.get("action"):
            print(f"  {entry['action']}")


def cmd_auto_renew(args: argparse.Namespace) -> int:
    store = AgentStore(args.store)
    scheduler = Scheduler(os.environ)
    if args.disable:
        return _disable_from_command_line(args, store, scheduler)
    if args.status:
        return _print_auto_renew_status(store, scheduler)
    server = validate_server_url(args.server)
    if args.enable:
        keep_passphrase_for_unattended(store)  # a PC that cannot run unattended is told first
        if not args.yes and not ask_yes_no(AUTO_RENEW_CONSENT):
            print("自動更新は有効にしませんでした。", file=sys.stderr)
            return 1
        client = ApiClient(server, cafile=args.cafile)
        where, reports = enable_auto_renewal(scheduler, client, store, args.cafile)
        print(where)
        print("自動更新を有効にしました。")
        print_check_ins(reports, True)
        return 0
    if args.action != "run":
        raise BadRequest("run、--enable、--disable、--status のいずれかを指定してください。")
    backend = None if args.no_install else platform_backend()
    entries = auto_renew_run(ApiClient(server, cafile=args.cafile), store, backend)
    if entries is None:
        print(ALREADY_RUNNING_MESSAGE)
        return 0
    _print_run(entries)
    return 1 if any(entry["result"] in ("refused", "failed") for entry in entries) else 0


def _disable_from_command_line(
    args: argparse.Namespace, store: AgentStore, scheduler: Scheduler
) -> int:
    """``auto-renew --disable``: off here, then the signed "off" check-ins to the server given
    (``--server``) or the one auto-renewal was enabled for."""
    kept = store.auto_renew_server()
    server, cafile = (args.server, args.cafile) if args.server else kept or (None, None)
    client = ApiClient(validate_server_url(server), cafile=cafile) if server else None
    if client is not None and auto_renewed_certificates(store, utc_now()):
        obtain_passphrase(store)
    reports = disable_auto_renewal(scheduler, store, client)
    print("自動更新を無効にしました。")
    print_check_ins(reports, False)
    return 0


def print_check_ins(reports: list[dict[str, Any]], enabled: bool) -> None:
    """Each check-in's outcome on the console (a failed one on stderr, with what comes next)."""
    what = "設定" if enabled else "解除"
    for report in reports:
        serial = report["serial"]
        if report["reported"]:
            print(
                f"企保ネットに自動更新の{what}を知らせました（シリアル番号：{serial}）。",
                flush=True,
            )
            continue
        print(
            f"企保ネットに自動更新の{what}を知らせられませんでした（シリアル番号：{serial}）："
            f"{report['message']}（ステータスコード：{report['status_code']}）",
            file=sys.stderr,
            flush=True,
        )
    if not all(report["reported"] for report in reports):
        print(CHECK_IN_FAILED_ON if enabled else CHECK_IN_FAILED_OFF, file=sys.stderr, flush=True)


def _print_auto_renew_status(store: AgentStore, scheduler: Scheduler) -> int:
    enabled = scheduler.is_enabled()
    print(f"自動更新：{'有効' if enabled else '無効'}")
    next_run = scheduler.next_run() if enabled else None
    if next_run:
        print(f"次回の自動実行：{next_run}")
    entries = read_run_log(store)
    if not entries:
        print("自動更新の実行記録はありません。")
        return 0
    print("最近の実行：")
    for entry in entries[-5:]:
        moment = _parse_moment(entry.get("at"))
        when = moment.astimezone(JST).strftime("%Y-%m-%d %H:%M") if moment else "-"
        label = AUTO_RENEW_RESULT_LABELS.get(str(entry.get("result")), str(entry.get("result")))
        print(f"  {when}  {entry.get('serial')}  {label}")
    upcoming = [
        moment
        for entry in entries
        if (moment := _parse_moment(entry.get("next_check"))) is not None and moment > utc_now()
    ]
    if upcoming:
        print(f"次回の更新確認：{min(upcoming).astimezone(JST).strftime('%Y-%m-%d %H:%M')} 以降")
    return 0


# --------------------------------------------------------------------------- CLI


def _print_error(exc: AgentError) -> None:
    print(exc.display(), file=sys.stderr)
    for name, messages in (exc.errors or {}).items():
        items = messages if isinstance(messages, list) else [messages]
        for message in items:
            print(f"  {name}：{message}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    store = AgentStore(args.store)
    platform_backend()  # a wrong KIHONET_AGENT_PLATFORM is said before serving
    store.create()
    obtain_passphrase(store)
    resume_and_report(ApiClient(args.server, cafile=args.cafile), store, platform_backend())
    run_server(args.server, store, port=args.port, cafile=args.cafile)
    return 0


def resume_and_report(
    client: ApiClient, store: AgentStore, backend: StoreBackend | None
) -> list[Resumed]:
    """Resume the requests kept from an earlier run, say how each ended, install what came."""
    results = resume_pending(client, store)
    for result in results:
        what = "取得" if result.kind == "enroll" else "更新"
        if result.info is None:
            print(f"中断していた証明書の{what}を再開できませんでした。", file=sys.stderr)
            if result.error is not None:
                _print_error(result.error)
            continue
        print(f"中断していた証明書の{what}を再開し、完了しました。")
        print(ENROLL_DONE_MESSAGE if result.kind == "enroll" else RENEW_DONE_MESSAGE)
        print(f"シリアル番号：{result.info.serial}")
        print(f"有効期限：{format_japanese_date(result.info.not_after)}")
        if backend is not None:
            outcome = install_certificate(
                store, result.info.serial, backend=backend, replaces=result.renewed
            )
            print_install_outcome(store, result.info.serial, outcome)
    return results


def _exit_code(store: AgentStore, results: list[Resumed], backend: StoreBackend | None) -> int:
    """1 when a resumed request failed, 3 when its certificate is not installed, else 0."""
    if any(result.info is None for result in results):
        return 1
    if backend is None:
        return 0
    issued = [result.info for result in results if result.info is not None]
    return EXIT_NOT_INSTALLED if any(not store.installed_in(i.serial) for i in issued) else 0


def cmd_enroll(args: argparse.Namespace) -> int:
    client = ApiClient(args.server, cafile=args.cafile)
    backend = None if args.no_install else platform_backend()
    store = AgentStore(args.store)
    store.ensure_writable()
    obtain_passphrase(store)
    resumed = resume_and_report(client, store, backend)
    if any(result.kind == "enroll" for result in resumed):
        # The enrollment of an earlier run got (or still waits for) its certificate.
        return _exit_code(store, resumed, backend)
    fields = {
        "kihonet_code": args.kihonet_code,
        "management_number": args.management_number,
        "user_id": args.user_id,
        "year": args.year,
        "branch_number": args.branch_number,
        "email": args.email,
    }
    enrollment = client.create_enrollment({k: v.strip() for k, v in fields.items()})
    token = enrollment.get("token")
    if not isinstance(token, str) or not token:
        raise BadServerResponse()
    print(f"Eメールアドレス：{enrollment.get('email') or args.email}")
    print(EMAIL_CONFIRMATION_MESSAGE)
    if not args.yes and not ask_yes_no("このEメールアドレスでよろしいですか？ [y/N]："):
        print(
            "処理を中止しました。Eメールアドレスを確認して、もう一度やり直してください。",
            file=sys.stderr,
        )
        return 1
    client.confirm_enrollment(token)
    info = enroll_with_token(client, token, store)
    print(ENROLL_DONE_MESSAGE)
    print(f"シリアル番号：{info.serial}")
    print(f"有効期限：{format_japanese_date(info.not_after)}")
    return _install_after_issue(store, info.serial, backend)


EXIT_NOT_INSTALLED = 3  # issued and kept in the tool's store, not installed in the browser's


def _install_after_issue(
    store: AgentStore, serial: str, backend: StoreBackend | None, *, replaces: str | None = None
) -> int:
    """Install unless ``--no-install`` (``backend`` None); exit code 3 when it failed."""
    if backend is None:
        print(f"証明書は保管フォルダー（{store.path}）にだけ保管しました。")
        return 0
    outcome = install_certificate(store, serial, backend=backend, replaces=replaces)
    print_install_outcome(store, serial, outcome)
    return EXIT_NOT_INSTALLED if outcome.error is not None else 0


def cmd_renew(args: argparse.Namespace) -> int:
    client = ApiClient(args.server, cafile=args.cafile)
    backend = None if args.no_install else platform_backend()
    store = AgentStore(args.store)
    if args.serial:
        serial = normalize_serial(args.serial)
    else:
        serial = choose_certificate(store.renewable_certificates()).serial
    store.ensure_writable()
    obtain_passphrase(store)
    resumed = resume_and_report(client, store, backend)
    if any(result.renewed == serial for result in resumed):
        return _exit_code(store, resumed, backend)
    info = renew(client, serial, store)
    print(RENEW_DONE_MESSAGE)
    print(f"シリアル番号：{info.serial}")
    print(f"有効期限：{format_japanese_date(info.not_after)}")
    return _install_after_issue(store, info.serial, backend, replaces=serial)


def cmd_install(args: argparse.Namespace) -> int:
    """Install (again) a certificate the tool holds, e.g. after a refusal (R14)."""
    store = AgentStore(args.store)
    serial = normalize_serial(args.serial)
    if not store.p12_path(serial).is_file():
        raise CertificateNotFound("指定された証明書が見つかりません。")
    backend = platform_backend()
    obtain_passphrase(store)
    outcome = install_certificate(store, serial, backend=backend)
    print_install_outcome(store, serial, outcome)
    return EXIT_NOT_INSTALLED if outcome.error is not None else 0


def cmd_list(args: argparse.Namespace) -> int:
    store = AgentStore(args.store)
    certificates = store.certificates()
    if not certificates:
        print("保管されている証明書はありません。")
        return 0
    client = ApiClient(args.server, cafile=args.cafile) if args.server else None
    statuses = certificate_statuses(store, certificates, client)
    for info in certificates:
        print(f"{info.summary_line()}  状態：{STATUS_LABELS[statuses[info.serial]]}")
        for target in store.installed_in(info.serial):
            print(f"  インストール先：{target.describe()}")
    return 0


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"ポート番号が正しくありません：{value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kihonet_agent.py",
        description="証明書取得クライアントツール（企業保険インターネットサービス）",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="DIR", help="証明書の保管フォルダー")
    remote = argparse.ArgumentParser(add_help=False)
    server_default = os.environ.get(ENV_SERVER) or None
    remote.add_argument(
        "--server",
        metavar="URL",
        default=server_default,
        required=server_default is None,
        help="企保ネットのアドレス",
    )
    remote.add_argument(
        "--cafile",
        metavar="FILE",
        default=os.environ.get(ENV_CAFILE) or None,
        help="サーバー証明書を検証する認証局証明書（PEM）",
    )

    no_install: dict[str, Any] = {
        "action": "store_true",
        "help": "ブラウザーの証明書ストアには入れず、保管フォルダーにだけ保管する",
    }
    serve = commands.add_parser("serve", parents=[remote, store], help="ブラウザーからの受付を開始")
    serve.add_argument(
        "--port",
        type=_port,
        default=os.environ.get(ENV_PORT) or str(DEFAULT_PORT),
        help="受付ポート番号（既定：47115）",
    )
    serve.set_defaults(handler=cmd_serve)

    enroll = commands.add_parser("enroll", parents=[remote, store], help="証明書の新規取得")
    for option, label in (
        ("--kihonet-code", "企保ネットコード"),
        ("--management-number", "管理番号"),
        ("--user-id", "ユーザーID"),
        ("--year", "年"),
        ("--branch-number", "枝番"),
        ("--email", "Eメールアドレス"),
    ):
        enroll.add_argument(option, required=True, help=label)
    enroll.add_argument("--yes", action="store_true", help="Eメールアドレスの確認を省略")
    enroll.add_argument("--no-install", **no_install)
    enroll.set_defaults(handler=cmd_enroll)

    renew_cmd = commands.add_parser("renew", parents=[remote, store], help="証明書の更新")
    renew_cmd.add_argument("--serial", help="更新する証明書のシリアル番号")
    renew_cmd.add_argument("--no-install", **no_install)
    renew_cmd.set_defaults(handler=cmd_renew)

    list_cmd = commands.add_parser("list", parents=[store], help="保管している証明書の一覧")
    list_cmd.add_argument(
        "--server",
        metavar="URL",
        default=server_default,
        help="証明書の状態を確認する企保ネットのアドレス（省略時はこのパソコンの記録だけ）",
    )
    list_cmd.add_argument(
        "--cafile",
        metavar="FILE",
        default=os.environ.get(ENV_CAFILE) or None,
        help="サーバー証明書を検証する認証局証明書（PEM）",
    )
    list_cmd.set_defaults(handler=cmd_list)

    install_cmd = commands.add_parser(
        "install", parents=[store], help="保管している証明書をブラウザーの証明書ストアに入れ直す"
    )
    install_cmd.add_argument("serial", metavar="SERIAL", help="証明書のシリアル番号")
    install_cmd.set_defaults(handler=cmd_install)

    auto = commands.add_parser("auto-renew", parents=[store], help="証明書の自動更新")
    auto.add_argument("action", nargs="?", choices=["run"], help="自動更新を今すぐ実行")
    mode = auto.add_mutually_exclusive_group()
    mode.add_argument("--enable", action="store_true", help="毎日とログオン時の自動更新を登録")
    mode.add_argument("--disable", action="store_true", help="自動更新の登録を解除")
    mode.add_argument("--status", action="store_true", help="自動更新の状態と最近の実行")
    auto.add_argument(
        "--server", metavar="URL", default=server_default, help="企保ネットのアドレス"
    )
    auto.add_argument(
        "--cafile",
        metavar="FILE",
        default=os.environ.get(ENV_CAFILE) or None,
        help="サーバー証明書を検証する認証局証明書（PEM）",
    )
    auto.add_argument("--yes", action="store_true", help="確認を省略（スクリプト用）")
    auto.add_argument("--no-install", **no_install)
    auto.set_defaults(handler=cmd_auto_renew)
    return parser


def _configure_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


def check_requirements() -> None:
    """cryptography 42+ (``not_valid_after_utc``, the PKCS#12 encryption builder)."""
    if not hasattr(x509.Certificate, "not_valid_after_utc"):
        raise AgentError(
            "cryptography 42 以降が必要です。"
            "「python -m pip install --upgrade cryptography」を実行してください。",
            status_code="agent_requirements",
        )


def main(argv: list[str] | None = None) -> int:
    _configure_stdio()
    args = build_parser().parse_args(argv)
    try:
        check_requirements()
        return int(args.handler(args))
    except AgentError as exc:
        _print_error(exc)
        return 1
    except KeyboardInterrupt:
        print("\n中断しました。", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
