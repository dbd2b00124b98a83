"""The load generator (no Django), a process of its own: asyncio with a minimal HTTP/1.1 client,
the customers' flows (acquisition, renewal) in a closed loop and offered at a fixed rate."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from functools import partial
from pathlib import Path

from bench.http_load.config import PHASES
from bench.http_load.report import p50_p95_ms


class HttpError(Exception):
    pass


class Connection:
    """One customer's HTTP/1.1 connection: keep-alive when the server allows it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: dict | None) -> tuple[int, dict]:
        body = json.dumps(payload).encode() if payload is not None else b""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                data = await self.reader.readexactly(int(headers["content-length"]))
            else:
                data = await self.reader.read()
                headers["connection"] = "close"
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError) as error:
            self.close()
            raise HttpError(f"{path}: {type(error).__name__} {error}") from error
        if headers.get("connection", "").lower() == "close":
            self.close()
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {"raw": data[:200].decode("utf-8", "replace")}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Phase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.steps: dict[str, list[float]] = {}
        self.errors = 0
        self.error_samples: list[str] = []
        self.started = 0  # acquisition: enrollments that got their 201
        self.abandoned = 0  # ... and then failed on the client's side
        self.issued: list[list[str]] = []  # [serial, user ID]
        self.renewed: list[list[str]] = []  # [old serial, new serial]
        self.exhausted = False
        self.window: tuple[float, float] = (0.0, 0.0)

    def error(self, step: str, detail: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{self.name} {step}: {detail}"[:300])

    def summary(self, seconds: float) -> dict:
        p50, p95 = p50_p95_ms(self.latencies)
        return {
            "completed": len(self.latencies),
            "seconds": seconds,
            "p50_ms": p50,
            "p95_ms": p95,
            "steps": {step: p50_p95_ms(values) for step, values in self.steps.items()},
            "errors": self.errors,
            "error_samples": self.error_samples,
            "started": self.started,
            "abandoned": self.abandoned,
            "issued": self.issued,
            "renewed": self.renewed,
            "exhausted": self.exhausted,
        }


async def _step(
    connection: Connection,
    phase: Phase,
    measured: bool,
    step: str,
    path: str,
    payload: dict | None,
    expect: int,
) -> dict | None:
    start = time.perf_counter()
    try:
        status, body = await connection.post(path, payload)
    except HttpError as error:
        phase.error(step, str(error))
        return None
    if measured:
        phase.steps.setdefault(step, []).append(time.perf_counter() - start)
    if status != expect:
        phase.error(step, f"{status} {json.dumps(body, ensure_ascii=False)[:200]}")
        return None
    return body


async def _acquire(connection: Connection, item, phase: Phase, measured: bool) -> bool:
    fields, csr = item
    names = ("kihonet_code", "management_number", "user_id", "year", "branch_number", "email")
    body = await _step(
        connection,
        phase,
        measured,
        "enrollments",
        "/api/v1/enrollments",
        dict(zip(names, fields, strict=True)),
        201,
    )
    if body is None:
        return False
    phase.started += 1
    token = body["token"]
    if (
        await _step(
            connection,
            phase,
            measured,
            "confirm",
            f"/api/v1/enrollments/{token}/confirm",
            None,
            200,
        )
        is None
    ):
        phase.abandoned += 1
        return False
    body = await _step(
        connection,
        phase,
        measured,
        "certificate",
        f"/api/v1/enrollments/{token}/certificate",
        {"csr": csr},
        201,
    )
    if body is None:
        phase.abandoned += 1
        return False
    phase.issued.append([body["serial"], fields[2]])
    return True


async def _renew(connection: Connection, item, phase: Phase, measured: bool) -> bool:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    serial, certificate, key, csr = item
    body = await _step(
        connection,
        phase,
        measured,
        "challenge",
        "/api/v1/renewals/challenge",
        {"certificate": certificate},
        201,
    )
    if body is None:
        return False
    challenge = body["challenge"]
    signature = base64.b64encode(key.sign(challenge.encode(), ec.ECDSA(hashes.SHA256())))
    body = await _step(
        connection,
        phase,
        measured,
        "renewals",
        "/api/v1/renewals",
        {
            "certificate": certificate,
            "challenge": challenge,
            "signature": signature.decode(),
            "csr": csr,
        },
        201,
    )
    if body is None:
        return False
    phase.renewed.append([serial, body["serial"]])
    return True


async def _customers(
    work: dict, flow, items, phase: Phase, seconds: float, measured: bool
) -> float:
    """``users`` customers doing ``flow`` back to back for ``seconds``; a flow is counted when
    it ends inside the window. Returns the window's length."""
    start = time.perf_counter()
    deadline = start + seconds

    async def customer() -> None:
        connection = Connection(work["host"], work["port"])
        try:
            while time.perf_counter() < deadline:
                item = next(items, None)
                if item is None:
                    phase.exhausted = True
                    return
                began = time.perf_counter()
                ok = await flow(connection, item, phase, measured)
                ended = time.perf_counter()
                if ok and measured and ended <= deadline:
                    phase.latencies.append(ended - began)
        finally:
            connection.close()

    await asyncio.gather(*(customer() for _ in range(work["users"])))
    return seconds


async def _paced_customers(
    work: dict, flow, items, phase: Phase, seconds: float, rate: float, measured: bool
) -> float:
    """Open loop: a flow is due every ``1 / rate`` s, whatever the server's speed, and the first
    of the ``users`` customers who is free takes it. Its latency counts from when it was due,
    so a wait for a free customer (the server falling behind) counts too: no coordinated
    omission. Every flow due in the window is finished; returns the window's length."""
    start = time.perf_counter()
    due: asyncio.Queue[float | None] = asyncio.Queue()

    async def schedule() -> None:
        for i in range(int(seconds * rate)):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(at)
        for _ in range(work["users"]):
            due.put_nowait(None)

    async def customer() -> None:
        connection = Connection(work["host"], work["port"])
        try:
            while (at := await due.get()) is not None:
                item = next(items, None)
                if item is None:
                    phase.exhausted = True
                    continue
                if await flow(connection, item, phase, measured) and measured:
                    phase.latencies.append(time.perf_counter() - at)
        finally:
            connection.close()

    await asyncio.gather(schedule(), *(customer() for _ in range(work["users"])))
    return time.perf_counter() - start


def _prepare(work: dict) -> tuple[list, list]:
    """Every CSR the run can use, made before any timed window."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")])

    def csr() -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        request = (
            x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode()

    start = time.perf_counter()
    acquisitions = [(fields, csr()) for fields in work["notices"]]
    renewals = [
        (serial, pem, serialization.load_pem_private_key(key.encode(), None), csr())
        for serial, pem, key in work["renewals"]
    ]
    print(
        f"generator: {len(acquisitions) + len(renewals):,} CSRs made in "
        f"{time.perf_counter() - start:.1f} s (before the timed windows)"
    )
    return acquisitions, renewals


async def _generate(work: dict) -> dict:
    acquisitions, renewals = _prepare(work)
    acquisitions = iter(acquisitions)
    out = {"users": work["users"], "seconds": work["seconds"], "paced_rate": work["paced_rate"]}
    closed = partial(_customers, work)
    paced = partial(_paced_customers, work, rate=work["paced_rate"])
    drivers = (
        (_acquire, acquisitions, closed),
        (_acquire, acquisitions, paced),
        (_renew, iter(renewals), closed),
    )
    for name, (flow, items, drive) in zip(PHASES, drivers, strict=True):
        phase = Phase(name)
        await drive(flow, items, phase, work["warmup"], measured=False)
        print(f"START {name}", flush=True)
        seconds = await drive(flow, items, phase, work["seconds"], measured=True)
        print(f"END {name}", flush=True)
        out[name] = phase.summary(seconds)
        print(
            f"generator: {name}: {len(phase.latencies):,} flows measured, {phase.errors} errors",
            flush=True,
        )
    return out


def generate(work_path: str, result_path: str) -> None:
    import resource

    work = json.loads(Path(work_path).read_text())
    result = asyncio.run(_generate(work))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["generator_cpu_seconds"] = usage.ru_utime + usage.ru_stime
    Path(result_path).write_text(json.dumps(result))
