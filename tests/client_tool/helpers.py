"""Helpers for the client-tool tests: a throwaway CA, a stand-in for the server API, the agent.

Nothing here imports Django or ``issuance.pki``: the tool must work on a customer's PC with
only the standard library and ``cryptography``.  The stand-in server speaks the documented
``/api/v1`` contract over real HTTP so that the agent is exercised without mocks.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import queue
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "issuance" / "client_tool" / "kihonet_agent.py"
READY = "受付を開始しました。"
PASSPHRASE = "correct horse battery staple"
# The six fields of the stub server's notice (R01), as the API takes them and as ``enroll`` does.
STUB_FIELDS = {
    "kihonet_code": "12345678",
    "management_number": "A123456789",
    "user_id": "U000001",
    "year": "2024",
    "branch_number": "001",
    "email": "taro@example.jp",
}
ENROLL_FIELDS = [
    part for name, value in STUB_FIELDS.items() for part in (f"--{name.replace('_', '-')}", value)
]


# --------------------------------------------------------------------------- throwaway CA


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Kihonet CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    subject: x509.Name, issuer: x509.Name, public_key: Any, signer: Any, path_length: int
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .sign(signer, hashes.SHA256())
    )


@dataclass
class ThrowawayCA:
    """A root and an issuing CA made for one test session."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    issuing_key: ec.EllipticCurvePrivateKey
    issuing: x509.Certificate

    @classmethod
    def create(cls) -> ThrowawayCA:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _ca_certificate(
            _name("Test Root"), _name("Test Root"), root_key.public_key(), root_key, 1
        )
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        issuing = _ca_certificate(
            _name("Test Issuing"), root.subject, issuing_key.public_key(), root_key, 0
        )
        return cls(root_key, root, issuing_key, issuing)

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.issuing, self.root]

    @property
    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)

    def issue(
        self,
        public_key: Any,
        *,
        user_id: str = "U000001",
        management_number: str = "A123456789",
        kihonet_code: str = "12345678",
        not_before: datetime | None = None,
        days: int = 365,
        serial: int | None = None,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - timedelta(minutes=5)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Insurance Co."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kihonet_code),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{user_id} {management_number}"),
            ]
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.issuing.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.issuing_key, hashes.SHA256())
        )


# --------------------------------------------------------------------------- stand-in server


@dataclass
class StubState:
    """What the stand-in server knows and saw."""

    ca: ThrowawayCA
    enrollments: dict[str, dict[str, Any]] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # How many certificate answers (201) to drop after issuing, closing the
    # connection unanswered; and whether the same request again gets the same answer (the
    # retry-safe server) or, as the server did before, 404 for a used token.
    drop_answers: int = 0
    retry_safe: bool = True
    issued: list[str] = field(default_factory=list)
    renewals: dict[str, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    # Called with (path, body) when a CSR arrives, before it is answered.
    on_csr: Any = None
    # Certificate statuses the stand-in answers on GET .../status (serial -> status).
    statuses: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"status_code": code, "message": message, **extra}


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued(state: StubState, csr_pem: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    if not csr.is_signature_valid:
        return _error(400, "3430", "CSRが正しくありません")
    state.issued.append(csr_pem)
    certificate = state.ca.issue(
        csr.public_key(),
        user_id=fields["user_id"],
        management_number=fields["management_number"],
        kihonet_code=fields["kihonet_code"],
        days=1825,
    )
    return 201, {
        "serial": format(certificate.serial_number, "X"),
        "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "chain": state.ca.chain_pem,
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "subject": certificate.subject.rfc4514_string(),
    }


def _fields_of(certificate: x509.Certificate) -> dict[str, str]:
    cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    ou = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    user_id, _, management_number = str(cn).partition(" ")
    return {"user_id": user_id, "management_number": management_number, "kihonet_code": str(ou)}


def _verify(certificate: x509.Certificate, challenge: str, signature_b64: str) -> bool:
    key = certificate.public_key()
    signature = base64.b64decode(signature_b64, validate=True)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, challenge.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, challenge.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def stub_api(state: StubState, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The documented ``/api/v1`` contract, just enough of it."""
    parts = path.strip("/").split("/")
    if path == "/api/v1/enrollments":
        if body.get("user_id") == "BAD0000":
            return _error(400, "3420", "入力情報エラー", errors={"user_id": ["一致しません。"]})
        token = secrets.token_urlsafe(16)
        state.enrollments[token] = {"fields": body, "confirmed": False}
        return 201, {
            "token": token,
            "email": body["email"],
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
    if len(parts) == 5 and parts[:3] == ["api", "v1", "enrollments"]:
        enrollment = state.enrollments.get(parts[3])
        if enrollment is None:
            return _error(404, "3410", "受付情報が見つかりません")
        if parts[4] == "confirm":
            enrollment["confirmed"] = True
            return 200, {"confirmed": True, "email": enrollment["fields"]["email"]}
        if parts[4] == "certificate" and enrollment.get("answer"):
            key = _spki(x509.load_pem_x509_csr(body["csr"].encode()).public_key())
            if not state.retry_safe:
                return _error(404, "3450", "受付情報が見つかりません")
            if key != enrollment["answer"][0]:
                return _error(409, "3442", "この受付では別の鍵の証明書が発行済みです")
            return 201, enrollment["answer"][1]
        if parts[4] == "certificate" and enrollment["confirmed"]:
            status, answer = _issued(state, body["csr"], enrollment["fields"])
            if status == 201:
                csr = x509.load_pem_x509_csr(body["csr"].encode())
                enrollment["answer"] = (_spki(csr.public_key()), answer)
            return status, answer
        return _error(409, "3440", "Eメールアドレスが確認されていません")
    held = x509.load_pem_x509_certificate(str(body.get("certificate", "")).encode())
    if path == "/api/v1/renewals/challenge":
        challenge = secrets.token_urlsafe(24)
        state.challenges[challenge] = format(held.serial_number, "X")
        return 201, {
            "challenge": challenge,
            "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        }
    if path == "/api/v1/renewals":
        challenge, serial = body["challenge"], format(held.serial_number, "X")
        key = _spki(x509.load_pem_x509_csr(body["csr"].encode()).public_key())
        done = state.renewals.get(serial)
        if done is not None and state.retry_safe and done[0] == key:
            return 201, done[1]  # the same renewal asked again: the same answer
        if state.challenges.pop(challenge, None) != serial:
            return _error(400, "3450", "チャレンジが正しくありません")
        if not _verify(held, challenge, body["signature"]):
            return _error(400, "3451", "署名が正しくありません")
        if done is not None:
            return _error(409, "3460", "この証明書は更新済みです")
        status, answer = _issued(state, body["csr"], _fields_of(held))
        if status == 201:
            state.renewals[serial] = (key, answer)
        return status, answer
    return _error(404, "not_found", "見つかりません")


class _StubHandler(BaseHTTPRequestHandler):
    server: _StubServer

    def do_GET(self) -> None:
        state = self.server.state
        parts = self.path.strip("/").split("/")
        with state.lock:
            state.requests.append((self.path, {}))
        if len(parts) == 5 and parts[:3] == ["api", "v1", "certificates"] and parts[4] == "status":
            status = state.statuses.get(parts[3])
            if status is not None:
                self._answer(200, {"serial": parts[3], "status": status})
                return
        self._answer(*_error(404, "not_found", "見つかりません"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        state = self.server.state
        if "csr" in body and state.on_csr is not None:
            state.on_csr(self.path, body)
        with state.lock:
            state.requests.append((self.path, body))
            status, payload = stub_api(state, self.path, body)
            drop = status == 201 and "csr" in body and state.drop_answers > 0
            if drop:
                state.drop_answers -= 1
        if drop:  # issued, and the answer never reaches the client
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(status, payload)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client is gone (a test killed it): its answer is lost
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: StubState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _StubHandler)


def tls_server_context(ca: ThrowawayCA, folder: Path) -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 from the throwaway CA, loaded in a context."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.issuing_key, hashes.SHA256())
    )
    chain = folder / "server-chain.pem"
    chain.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + ca.issuing.public_bytes(serialization.Encoding.PEM)
    )
    key_file = folder / "server-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    return context


@contextmanager
def stub_server(
    ca: ThrowawayCA, *, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[str, StubState]]:
    """A stand-in kihonet server on a free port: yields (base URL, state)."""
    state = StubState(ca)
    server = _StubServer(state)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- the agent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FILE_KEYRING = "keyrings.alt.file.PlaintextKeyring"


def file_keyring(data_home: Path) -> Any:
    """keyrings.alt's file keyring in ``data_home``, read and written through keyring's API."""
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(data_home / "python_keyring" / "keyring_pass.cfg")
    return backend


def keyring_env(data_home: Path, store: Path | None = None, secret: str = PASSPHRASE) -> dict:
    """The variables that give the tool a real keyring backend (the file keyring, chosen with
    ``PYTHON_KEYRING_BACKEND`` as keyring documents) kept in ``data_home``; with ``store``, the
    keyring already holds ``secret`` for it (as ``keyring set kihonet-agent STORE`` leaves it)."""
    if store is not None:
        file_keyring(data_home).set_password("kihonet-agent", str(store.resolve()), secret)
    return {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, "XDG_DATA_HOME": str(data_home)}


def agent_env(store: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KIHONET_") and k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")
    }
    env.update(
        {
            "KIHONET_AGENT_HOME": str(store),
            "KIHONET_AGENT_PASSPHRASE": PASSPHRASE,
            # The browser's stores of a home of the test's own, never the machine user's.
            "HOME": str(store.parent / "home"),
            # No keyring unless a test sets one up (a developer's own keyring stays untouched).
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "*",
        }
    )
    env.update(extra)
    return env


def run_agent(
    *args: str,
    store: Path,
    input: str = "",
    **extra_env: str,
) -> subprocess.CompletedProcess[str]:
    """``python kihonet_agent.py ARGS`` to completion."""
    return run_captured(
        [sys.executable, str(AGENT), *args], env=agent_env(store, **extra_env), input=input
    )


def run_captured(
    command: list[str], *, env: dict[str, str], input: str = "", timeout: int = 60, **more: Any
) -> subprocess.CompletedProcess[str]:
    """``command`` to completion, its output as UTF-8 text; a non-zero exit is not raised."""
    return subprocess.run(
        command,
        input=input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=timeout,
        check=False,
        **more,
    )


@dataclass
class Agent:
    process: subprocess.Popen[str]
    port: int
    server: str
    origin: str
    lines: list[str]
    sink: queue.Queue[str | None]

    def output_after_stop(self) -> list[str]:
        """Every stdout line, once the process has ended."""
        self.stop()
        while (line := self.sink.get(timeout=10)) is not None:
            self.lines.append(line)
        return self.lines

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def _pump(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


@contextmanager
def serving_agent(
    store: Path, server: str, *, timeout: float = 15.0, **extra_env: str
) -> Iterator[Agent]:
    """``kihonet_agent.py serve`` in a subprocess, yielded once it printed the ready line."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(AGENT), "serve", "--server", server, "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=agent_env(store, **extra_env),
    )
    lines: list[str] = []
    sink: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, sink), daemon=True).start()
    origin = server.split("/")[0] + "//" + server.split("/")[2]
    agent = Agent(process, port, server, origin, lines, sink)
    try:
        deadline = time.monotonic() + timeout
        while READY not in lines:
            line = sink.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"agent exited: {lines} {process.stderr.read()}")
            lines.append(line)
        yield agent
    finally:
        agent.stop()


# --------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    agent: Agent,
    method: str,
    path: str,
    *,
    body: Any = None,
    data: bytes | None = None,
    origin: str | None = "default",
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request to the agent with urllib; errors are returned, not raised."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{agent.port}{path}", data=data, method=method
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if origin is not None:
        request.add_header("Origin", agent.origin if origin == "default" else origin)
    request.add_header("Host", host or f"127.0.0.1:{agent.port}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _opener.open(request, timeout=30) as response:
            return Reply(response.status, response.headers, _json(response.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, _json(exc.read()))


def _json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def notice_fields(notice: Any) -> list[str]:
    """The six fields of ``notice`` (R01) as the client tool's ``enroll`` takes them."""
    user = notice.user
    return [
        "--kihonet-code", user.customer.kihonet_code,
        "--management-number", user.management_number,
        "--user-id", user.user_id,
        "--year", str(notice.registration_year),
        "--branch-number", notice.branch_number,
        "--email", notice.email,
    ]  # fmt: skip
