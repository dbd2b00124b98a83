"""HTTP load on the JSON API: gunicorn on loopback, PostgreSQL, Redis, 50 concurrent customers.

``python -m bench http_load`` (part of ``make bench``, never of ``make test``):

1. A throwaway CA (EC P-256) in a temporary folder, made four years ago, so that certificates
   "issued three years less ten days ago" are inside its validity.
2. The bench's rows in the benchmark database: 20,000 notices (customers ``971xxxxx``, users
   ``HAxxxxx``; bulk inserts, kept between runs, reset to unused at the start of each run) and
   certificates in their renewal window (users ``HRxxxxx``; issued with ``issue_certificate`` at
   every run, their private keys in a temporary file for the load generator). What a previous
   run issued, started or audited for these users is deleted first.
3. gunicorn serving ``kihonet.wsgi`` on 127.0.0.1:<free port>, with the CA in the environment.
4. The load generator, a separate process (``python -m bench.http_load generate WORK RESULT``):
   asyncio with a minimal HTTP/1.1 client of its own. It pre-generates every CSR (EC P-256)
   before the timed windows, then runs three phases of ``SECONDS`` each after a short warm-up,
   with 50 customers:
   - acquisition (POST enrollments, confirm, certificate) in a closed loop: each customer starts
     its next flow as soon as one ends. This gives the most flows/s the server can do; the
     latency there is queueing by construction (Little's law: 50 customers / rate);
   - acquisition offered at the target rate (open loop, BENCH_HTTP_PACED_RATE, 150 flows/s):
     a flow is due every 1/rate s and the first free customer takes it; its latency counts from
     when it was due. This is the latency the p95 target is about: the one at 150 flows/s;
   - renewal (challenge, ECDSA signature of the challenge, POST renewals with a new CSR) in a
     closed loop.
5. Checks in the database: one certificate per notice, one renewal per certificate, every 201
   the client got has its row, no certificate the client did not receive, every started
   enrollment completed or accounted for by a client-side error.

Why not locust: the generator shares the two cores with gunicorn, PostgreSQL and Redis, so it
must cost as little CPU per request as possible; locust (gevent, its stats and web machinery)
costs several times what a bare asyncio loop does per request and brings a large dependency
tree for one benchmark. The generator's own CPU time is measured and reported.

Settings through the environment: BENCH_HTTP_SECONDS (60), BENCH_HTTP_USERS (50),
BENCH_HTTP_WORKER_CLASS (gthread), BENCH_HTTP_WORKERS (cores + 1), BENCH_HTTP_THREADS (2),
BENCH_HTTP_NOTICES (36000), BENCH_HTTP_RENEWAL_CERTS (20000), BENCH_HTTP_PYSPY (a file: py-spy
records the gunicorn workers during the acquisition window, when py-spy is installed),
BENCH_HTTP_REDIS (redis://127.0.0.1:6379: the server whose databases 2 and 3, emptied at the
start of each run, are the bench's cache and broker).

The machine's cores are shared by gunicorn, PostgreSQL, Redis and the generator (and whatever
else runs there): the CPU each used in the timed windows is reported, with the server's CPU per
flow and the rate that CPU cost allows on idle cores.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "60"))
WARMUP_SECONDS = 3.0
USERS = int(os.environ.get("BENCH_HTTP_USERS", "50"))
CORES = os.cpu_count() or 1
# gthread (keep-alive, no accept/close per request): sync x 5 (2 x cores + 1) and sync x 3 cost
# 10-20 % more CPU per flow. Cores + 1 workers of 2 threads each: the same CPU per flow as
# 2 x 8, with a higher rate and a shorter tail (fewer threads wait for each worker's GIL);
# 30 s runs on this 2-core box: 212 against 192 flows/s, p95 at 150 flows/s 24 against 41 ms.
WORKER_CLASS = os.environ.get("BENCH_HTTP_WORKER_CLASS", "gthread")
WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", str(CORES + 1)))
THREADS = int(os.environ.get("BENCH_HTTP_THREADS", "2"))
N_NOTICES = int(os.environ.get("BENCH_HTTP_NOTICES", "36000"))
N_RENEWAL_CERTS = int(os.environ.get("BENCH_HTTP_RENEWAL_CERTS", "20000"))
PYSPY_OUTPUT = os.environ.get("BENCH_HTTP_PYSPY", "")

REDIS_URL = os.environ.get("BENCH_HTTP_REDIS", "redis://127.0.0.1:6379").rstrip("/")
CACHE_URL = f"{REDIS_URL}/2"
CELERY_BROKER_URL = f"{REDIS_URL}/3"

ACQUISITION_RATE_TARGET = 150.0
# The open-loop phase offers flows at this rate (BENCH_HTTP_PACED_RATE) and measures their
# latency: the p95 target is a latency at the target rate, not at saturation.
PHASES = ("acquisition", "acquisition_paced", "renewal")
PACED_RATE = float(os.environ.get("BENCH_HTTP_PACED_RATE", str(ACQUISITION_RATE_TARGET)))
ACQUISITION_P95_TARGET_MS = 100.0

# The bench's own rows, apart from everything else in the database.
ACQ_CODE_BASE = 97_100_000  # customers 97100000.. hold the notices
RENEWAL_CODE_BASE = 97_200_000  # customers 97200000.. hold the certificates to renew
ACQ_USER_PREFIX = "HA"
RENEWAL_USER_PREFIX = "HR"
USERS_PER_CUSTOMER = 4
RENEWAL_USERS = 200
BENCH_DOMAIN = "bench-http.example.jp"
NOTICE_ISSUED_ON = date(2026, 4, 1)


# ================================================================ the bench side (Django)


def run():
    from django.test.utils import override_settings
    from django.utils import timezone

    from issuance import ca

    workdir = Path(tempfile.mkdtemp(prefix="kihonet-bench-http-"))
    port = _free_port()
    passphrase = f"bench {secrets.token_hex(16)}"
    base_url = f"http://127.0.0.1:{port}"
    overrides = override_settings(
        KIHONET_CA_DIR=workdir / "ca",
        KIHONET_CA_PASSPHRASE=passphrase,
        KIHONET_CA_PASSPHRASE_FILE="",
        KIHONET_BASE_URL=base_url,
        DEBUG=False,
    )
    overrides.enable()
    try:
        ca.reset()
        ca.create(now=timezone.now() - timedelta(days=4 * 365))
        return _run(workdir, port, passphrase)
    finally:
        ca.reset()
        overrides.disable()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, port: int, passphrase: str) -> list:
    _flush_redis()
    started = time.perf_counter()
    _delete_previous_run()
    notices = _bench_notices()
    renewals = _renewal_certificates(N_RENEWAL_CERTS)
    print(
        f"  seeded in {time.perf_counter() - started:.1f} s: {len(notices):,} unused notices, "
        f"{len(renewals):,} certificates in their renewal window",
        flush=True,
    )

    work = workdir / "work.json"
    result_path = workdir / "result.json"
    work.write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "port": port,
                "users": USERS,
                "seconds": SECONDS,
                "warmup": WARMUP_SECONDS,
                "paced_rate": PACED_RATE,
                "notices": notices,
                "renewals": renewals,
            }
        )
    )
    work.chmod(0o600)  # the renewal certificates' private keys

    server = Gunicorn(port, workdir, passphrase)
    try:
        server.start()
        cpu = _drive_generator(work, result_path, server)
    finally:
        server.stop()
    result = json.loads(result_path.read_text())
    problems = _check_database(result)
    return _results(result, cpu, problems, server)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flush_redis() -> None:
    """The bench's own cache and broker databases: no lock or queued task of an earlier run."""
    import redis

    for url in (CACHE_URL, CELERY_BROKER_URL):
        redis.Redis.from_url(url).flushdb()


# ---------------------------------------------------------------- rows


def _table(model) -> str:
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def _delete_previous_run() -> None:
    """Everything an earlier run made for the bench's users goes; the notices become unused.

    Plain DELETEs (the bench's rows only) rather than the ORM's collector, which would query
    every model pointing at these tables and refuses the audit trail's deletes.
    """
    from django.db import connection, transaction

    from bench.core import require_bench_database

    require_bench_database()

    from issuance.models import (
        AuditEvent,
        Certificate,
        Customer,
        Enrollment,
        KihonetUser,
        Notice,
        RenewalChallenge,
    )

    prefixes = [f"{ACQ_USER_PREFIX}%", f"{RENEWAL_USER_PREFIX}%"]
    statements = [
        (
            "DELETE FROM {challenge} WHERE certificate_id IN "
            "(SELECT id FROM {certificate} WHERE user_id IN ({users}))",
            prefixes,
        ),
        (
            "DELETE FROM {enrollment} WHERE notice_id IN "
            "(SELECT id FROM {notice} WHERE user_id IN ({users}))",
            prefixes,
        ),
        ("DELETE FROM {audit} WHERE kihonet_user_id IN ({users})", prefixes),
        ("DELETE FROM {certificate} WHERE user_id IN ({users})", prefixes),
        (
            "UPDATE {notice} SET used_at = NULL WHERE used_at IS NOT NULL AND user_id IN ({users})",
            prefixes,
        ),
        (
            "UPDATE {customer} SET started_using = false "
            "WHERE started_using AND kihonet_code LIKE %s",
            ["971%"],
        ),
    ]
    names = {
        "certificate": _table(Certificate),
        "challenge": _table(RenewalChallenge),
        "enrollment": _table(Enrollment),
        "notice": _table(Notice),
        "audit": _table(AuditEvent),
        "customer": _table(Customer),
        "user": _table(KihonetUser),
    }
    users = "SELECT id FROM {user} WHERE user_id LIKE %s OR user_id LIKE %s"
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in statements:
            # The table names come from the models; the values are parameters.
            cursor.execute(statement.replace("{users}", users).format(**names), params)


def _bench_notices() -> list[list[str]]:
    """N_NOTICES unused notices of the bench (bulk inserts for the missing ones), as the six
    fields the customer types."""
    from issuance.models import Customer, KihonetUser, Notice
    from issuance.rules.business_days import registration_year

    existing = KihonetUser.objects.filter(user_id__startswith=ACQ_USER_PREFIX).count()
    if existing < N_NOTICES:
        start = time.perf_counter()
        first_customer = existing // USERS_PER_CUSTOMER
        last_customer = (N_NOTICES - 1) // USERS_PER_CUSTOMER
        Customer.objects.bulk_create(
            [
                Customer(kihonet_code=f"{ACQ_CODE_BASE + c:08d}", name=f"HTTPベンチ株式会社{c}")
                for c in range(first_customer, last_customer + 1)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        customers = dict(
            Customer.objects.filter(kihonet_code__startswith="971").values_list(
                "kihonet_code", "pk"
            )
        )
        users = KihonetUser.objects.bulk_create(
            [
                KihonetUser(
                    customer_id=customers[f"{ACQ_CODE_BASE + i // USERS_PER_CUSTOMER:08d}"],
                    user_id=f"{ACQ_USER_PREFIX}{i:05d}",
                    management_number=f"HLA{i:07d}",
                    email=f"ha{i}@{BENCH_DOMAIN}",
                )
                for i in range(existing, N_NOTICES)
            ],
            batch_size=2000,
        )
        year = registration_year(NOTICE_ISSUED_ON)
        Notice.objects.bulk_create(
            [
                Notice(
                    user=user,
                    kind=Notice.Kind.NEW,
                    branch_number="001",
                    printed_year=NOTICE_ISSUED_ON.year,
                    registration_year=year,
                    issued_on=NOTICE_ISSUED_ON,
                    email=user.email,
                )
                for user in users
            ],
            batch_size=2000,
        )
        _analyze(Customer, KihonetUser, Notice)
        print(
            f"  wrote {N_NOTICES - existing:,} notices in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    rows = (
        Notice.objects.filter(user__user_id__startswith=ACQ_USER_PREFIX, used_at__isnull=True)
        .order_by("user__user_id")
        .values_list(
            "user__customer__kihonet_code",
            "user__management_number",
            "user__user_id",
            "registration_year",
            "branch_number",
            "email",
        )
    )
    return [
        [code, number, user_id, str(year), branch, email]
        for code, number, user_id, year, branch, email in rows[:N_NOTICES]
    ]


def _analyze(*models) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {_table(model)}")


def _renewal_certificates(count: int) -> list[list[str]]:
    """``count`` certificates issued three years less ten days ago through issue_certificate
    (so that their renewal window is open today), with their private keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from django.utils import timezone

    from issuance import audit
    from issuance.models import Certificate, Customer, KihonetUser
    from issuance.services.certificates import issue_certificate

    holders = list(
        KihonetUser.objects.select_related("customer")
        .filter(user_id__startswith=RENEWAL_USER_PREFIX)
        .order_by("user_id")
    )
    if len(holders) < RENEWAL_USERS:
        Customer.objects.bulk_create(
            [
                Customer(
                    kihonet_code=f"{RENEWAL_CODE_BASE + c:08d}",
                    name=f"HTTP更新ベンチ{c}",
                    started_using=True,
                )
                for c in range(RENEWAL_USERS // USERS_PER_CUSTOMER)
            ],
            ignore_conflicts=True,
        )
        customers = dict(
            Customer.objects.filter(kihonet_code__startswith="972").values_list(
                "kihonet_code", "pk"
            )
        )
        KihonetUser.objects.bulk_create(
            [
                KihonetUser(
                    customer_id=customers[f"{RENEWAL_CODE_BASE + i // USERS_PER_CUSTOMER:08d}"],
                    user_id=f"{RENEWAL_USER_PREFIX}{i:05d}",
                    management_number=f"HLR{i:07d}",
                    email=f"hr{i}@{BENCH_DOMAIN}",
                )
                for i in range(RENEWAL_USERS)
            ],
            ignore_conflicts=True,
        )
        holders = list(
            KihonetUser.objects.select_related("customer")
            .filter(user_id__startswith=RENEWAL_USER_PREFIX)
            .order_by("user_id")
        )

    start = time.perf_counter()
    issued_at = timezone.now() - timedelta(days=3 * 365 - 10)
    actor = audit.Actor.system("bench")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")])
    renewals = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        certificate = issue_certificate(
            user=holders[i % len(holders)], csr_data=csr, actor=actor, now=issued_at
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        renewals.append([certificate.serial, certificate.pem, key_pem.decode()])
    _analyze(Certificate)
    print(
        f"  issued {count:,} certificates to renew in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return renewals


# ---------------------------------------------------------------- gunicorn


class Gunicorn:
    def __init__(self, port: int, workdir: Path, passphrase: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "gunicorn.log"
        self.passphrase = passphrase
        self.workdir = workdir
        self.database = dj_database_url_name(os.environ["DATABASE_URL"])
        self.process: subprocess.Popen | None = None
        self.description = f"gunicorn {WORKER_CLASS} x {WORKERS} workers" + (
            f" x {THREADS} threads" if WORKER_CLASS == "gthread" else ""
        )

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "kihonet.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            WORKER_CLASS,
            "--backlog",
            "2048",
            "--keep-alive",
            "10",
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log),
        ]
        if WORKER_CLASS == "gthread":
            command += ["--threads", str(THREADS)]
        return command

    def environment(self) -> dict[str, str]:
        from django.conf import settings

        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kihonet.settings",
            "KIHONET_ENV": "development",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": os.environ["DATABASE_URL"],
            # Connections kept for the whole run (60 s by default would replace every one of
            # them inside the timed window, and their CPU could not be counted).
            "DATABASE_CONN_MAX_AGE": "600",
            "CACHE_URL": CACHE_URL,
            "CELERY_BROKER_URL": CELERY_BROKER_URL,
            "KIHONET_CA_DIR": str(settings.KIHONET_CA_DIR),
            "KIHONET_CA_PASSPHRASE": self.passphrase,
            "KIHONET_CA_PASSPHRASE_FILE": "",
            "KIHONET_BASE_URL": self.url,
        }

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            self.command(),
            cwd=REPO,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with opener.open(f"{self.url}/api/v1/openapi.json", timeout=2) as answer:
                    if answer.status == 200:
                        print(f"  {self.description} on {self.url}", flush=True)
                        return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- CPU accounting


def dj_database_url_name(url: str) -> str:
    import dj_database_url

    return dj_database_url.parse(url)["NAME"]


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
    return pids


def _postgres_pids(database: str) -> list[int]:
    """PostgreSQL's processes that work for the bench: the backends connected to its database
    and the background ones (WAL writer, checkpointer, ...), not the other databases' clients."""
    pids = []
    for pid in _pids_named("postgres"):
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            client = "(" in title or "[local]" in title
            if not client or f" {database} " in title:
                pids.append(pid)
    return pids


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def _cpu_snapshot(server: Gunicorn, generator_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds per process of each party, and of the whole machine (pid 0)."""
    busy, total = _machine_cpu()
    groups = {
        "gunicorn": server.worker_pids(),
        "postgres": _postgres_pids(server.database),
        "redis": _pids_named("redis-server"),
        "generator": [generator_pid],
    }
    snapshot = {name: {pid: _process_cpu(pid) for pid in pids} for name, pids in groups.items()}
    snapshot["machine busy"] = {0: busy}
    snapshot["machine total"] = {0: total}
    snapshot["wall"] = {0: time.perf_counter()}
    return snapshot


def _cpu_delta(start: dict, end: dict) -> dict[str, float]:
    """Per party, the CPU time its processes used between the two snapshots (a process that
    started in between counts from zero; one that ended in between is not counted)."""
    return {
        name: sum(seconds - start[name].get(pid, 0.0) for pid, seconds in pids.items())
        for name, pids in end.items()
    }


def _drive_generator(work: Path, result_path: Path, server: Gunicorn) -> dict[str, dict]:
    """Runs the generator; samples the CPU of every party at the start and end of each timed
    window (the generator says when on its standard output)."""
    process = subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "bench.http_load", "generate", str(work), str(result_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    starts: dict[str, dict] = {}
    windows: dict[str, dict] = {}
    spy: subprocess.Popen | None = None
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        kind, _, phase = line.partition(" ")
        if kind == "START":
            starts[phase] = _cpu_snapshot(server, process.pid)
            pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            if phase == "acquisition" and PYSPY_OUTPUT and Path(pyspy).exists():
                spy = subprocess.Popen(  # noqa: S603
                    [
                        pyspy,
                        "record",
                        "--pid",
                        str(server.process.pid),
                        "--subprocesses",
                        "--duration",
                        str(int(SECONDS) - 2),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        PYSPY_OUTPUT,
                        "--nonblocking",
                        "--gil",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        elif kind == "END":
            end = _cpu_snapshot(server, process.pid)
            windows[phase] = _cpu_delta(starts[phase], end)
        else:
            print(f"  {line}", flush=True)
    if process.wait() != 0:
        raise RuntimeError(f"the load generator failed with exit code {process.returncode}")
    if spy is not None:
        spy.wait(timeout=120)
        print(f"  py-spy profile of the acquisition window: {PYSPY_OUTPUT}", flush=True)
    return windows


# ---------------------------------------------------------------- checks in the database


def _check_database(result: dict) -> list[str]:
    """What the database must show after the run; each problem as a sentence."""
    from django.db.models import Count

    from issuance.models import Certificate, Enrollment, Notice

    problems: list[str] = []
    acquisition = _both_acquisition_phases(result)
    renewal = result["renewal"]

    # New acquisition: one certificate per notice, and exactly the ones the client received.
    issued = Certificate.objects.filter(notice__user__user_id__startswith=ACQ_USER_PREFIX)
    duplicated = issued.values("notice_id").annotate(n=Count("id")).filter(n__gt=1).count()
    if duplicated:
        problems.append(f"{duplicated} notices have more than one certificate")
    in_db = dict(issued.values_list("serial", "notice__user__user_id"))
    received = dict(acquisition["issued"])  # serial -> user ID, every 201 incl. the warm-up
    missing = set(received) - set(in_db)
    if missing:
        problems.append(f"{len(missing)} certificates the client received are not in the DB")
    wrong_owner = [s for s in set(received) & set(in_db) if received[s] != in_db[s]]
    if wrong_owner:
        problems.append(f"{len(wrong_owner)} certificates belong to another user than asked")
    unseen = set(in_db) - set(received)
    if unseen:
        problems.append(f"{len(unseen)} certificates were issued but never reached the client")
    unused_with_cert = Notice.objects.filter(
        user__user_id__startswith=ACQ_USER_PREFIX, used_at__isnull=True, certificates__isnull=False
    ).count()
    if unused_with_cert:
        problems.append(f"{unused_with_cert} notices have a certificate but are not marked used")

    # Every enrollment started is completed, or the client saw the flow fail after the start.
    enrollments = Enrollment.objects.filter(notice__user__user_id__startswith=ACQ_USER_PREFIX)
    started = enrollments.count()
    completed = enrollments.filter(certificate__isnull=False).count()
    if started != acquisition["started"]:
        problems.append(
            f"{started} enrollments in the DB, the client started {acquisition['started']}"
        )
    open_count = started - completed
    if open_count != acquisition["abandoned"]:
        problems.append(
            f"{open_count} enrollments left open, the client accounts for "
            f"{acquisition['abandoned']} (flows that failed after the start)"
        )
    if completed != len(received):
        problems.append(
            f"{completed} enrollments completed, the client received {len(received)} certificates"
        )

    # Renewal: one renewal per certificate, exactly the ones the client received.
    renewed = Certificate.objects.filter(
        renewed_from__user__user_id__startswith=RENEWAL_USER_PREFIX
    )
    twice = renewed.values("renewed_from_id").annotate(n=Count("id")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice} certificates were renewed more than once")
    pairs = dict(renewed.values_list("serial", "renewed_from__serial"))
    received_pairs = {new: old for old, new in renewal["renewed"]}
    if pairs != received_pairs:
        lost = set(received_pairs) - set(pairs)
        extra = set(pairs) - set(received_pairs)
        problems.append(
            f"renewals: {len(lost)} received but not in the DB, {len(extra)} in the "
            "DB but never received, or renewed from another certificate"
        )
    return problems


def _both_acquisition_phases(result: dict) -> dict:
    """What the client did in the two acquisition phases (at saturation, then paced), as one."""
    phases = (result["acquisition"], result["acquisition_paced"])
    return {
        "issued": [pair for phase in phases for pair in phase["issued"]],
        "started": sum(phase["started"] for phase in phases),
        "abandoned": sum(phase["abandoned"] for phase in phases),
    }


# ---------------------------------------------------------------- results


def _cpu_note(window: dict[str, float]) -> str:
    wall = window["wall"]
    parties = ("gunicorn", "postgres", "redis", "generator")
    parts = [f"{name} {window[name] / wall:.2f}" for name in parties]
    busy = window["machine busy"] / wall
    others = busy - sum(window[name] for name in parties) / wall
    return (
        f"CPU (cores) in the window: {', '.join(parts)}, anything else {others:.2f}; "
        f"machine {busy:.2f} of {CORES} busy"
    )


def _cpu_rows(name: str, window: dict[str, float], flows: int) -> list:
    """What one flow costs in CPU, and how many flows/s the machine's cores could give if the
    server and the generator had them to themselves (the other sessions' load taken out)."""
    from bench.core import Result

    server = (window["gunicorn"] + window["postgres"] + window["redis"]) / flows * 1000
    generator = window["generator"] / flows * 1000
    ceiling = CORES * 1000 / (server + generator)
    return [
        Result(
            f"HTTP: {name} server CPU per flow",
            server,
            "ms",
            note=f"gunicorn {window['gunicorn'] / flows * 1000:.1f} + PostgreSQL "
            f"{window['postgres'] / flows * 1000:.1f} + Redis "
            f"{window['redis'] / flows * 1000:.1f} ms; generator {generator:.1f} ms",
        ),
        Result(
            f"HTTP: {name} CPU ceiling on {CORES} idle cores",
            ceiling,
            "flows/s",
            note=f"{CORES} cores / (server + generator CPU per flow): the rate if nothing "
            "else ran on the machine",
        ),
    ]


def _results(result: dict, cpu: dict[str, dict], problems: list[str], server: Gunicorn) -> list:
    from bench.core import Result

    acquisition, paced, renewal = (result[name] for name in PHASES)
    errors = acquisition["errors"] + paced["errors"] + renewal["errors"]
    samples = acquisition["error_samples"] + paced["error_samples"] + renewal["error_samples"]
    for sample in samples[:10]:
        print(f"  error: {sample}", flush=True)
    for problem in problems:
        print(f"  DB check: {problem}", flush=True)
    setup = f"{server.description}, {result['users']} customers, {result['seconds']:g} s"

    rows = []
    for name, phase in (("acquisition", acquisition), ("renewal", renewal)):
        flows_per_second = phase["completed"] / phase["seconds"]
        acq = name == "acquisition"
        rows += [
            Result(
                f"HTTP: {name} flows/s",
                flows_per_second,
                "flows/s",
                f">= {ACQUISITION_RATE_TARGET:g}" if acq else "",
                flows_per_second >= ACQUISITION_RATE_TARGET if acq else None,
                note=f"{phase['completed']:,} flows in {phase['seconds']:.1f} s; {setup}; "
                f"closed loop, no pause between flows{_exhausted(phase)}",
            ),
            Result(f"HTTP: {name} p50, closed loop", phase["p50_ms"], "ms", note=_steps(phase)),
            Result(
                f"HTTP: {name} p95, closed loop",
                phase["p95_ms"],
                "ms",
                note=_cpu_note(cpu[name]) if name in cpu else "",
            ),
        ]
        if name in cpu and phase["completed"]:
            rows += _cpu_rows(name, cpu[name], phase["completed"])
        if acq:
            rows += _paced_rows(result, cpu)
    rows += [
        Result(
            "HTTP: errors",
            errors,
            "count",
            "0",
            errors == 0,
            note=f"acquisition {acquisition['errors']}, paced {paced['errors']}, "
            f"renewal {renewal['errors']} "
            "(any answer other than the expected 2xx, or a connection error)",
        ),
        Result(
            "HTTP: DB consistency problems",
            len(problems),
            "count",
            "0",
            not problems,
            note="; ".join(problems)
            or "one certificate per notice, one renewal per "
            "certificate, every 201 in the DB, no enrollment lost",
        ),
        Result(
            "HTTP: load generator CPU",
            result["generator_cpu_seconds"],
            "s",
            note="the generator's own CPU time (CSR generation included), on the same "
            f"{CORES} cores as the server",
        ),
    ]
    return rows


def _paced_rows(result: dict, cpu: dict[str, dict]) -> list:
    """The latency target, at the target rate: flows offered at a fixed rate (open loop)."""
    from bench.core import Result

    phase = result["acquisition_paced"]
    offered = result["paced_rate"]
    achieved = phase["completed"] / phase["seconds"]
    p95 = phase["p95_ms"]
    return [
        Result(
            f"HTTP: acquisition offered at {offered:g} flows/s, done",
            achieved,
            "flows/s",
            note=f"{phase['completed']:,} flows in {phase['seconds']:.1f} s; one due every "
            f"{1000 / offered:.1f} ms, taken by the first of {result['users']} customers "
            f"who is free{_exhausted(phase)}",
        ),
        Result(
            f"HTTP: acquisition p50 at {offered:g} flows/s",
            phase["p50_ms"],
            "ms",
            note=_steps(phase),
        ),
        Result(
            f"HTTP: acquisition p95 at {offered:g} flows/s",
            p95,
            "ms",
            f"< {ACQUISITION_P95_TARGET_MS:g} ms",
            p95 < ACQUISITION_P95_TARGET_MS,
            note="from when each flow was due (a wait for a free customer counts); "
            + (_cpu_note(cpu["acquisition_paced"]) if "acquisition_paced" in cpu else ""),
        ),
    ]


def _steps(phase: dict) -> str:
    return ", ".join(
        f"{step} p50 {v[0]:.1f} / p95 {v[1]:.1f} ms" for step, v in phase["steps"].items()
    )


def _exhausted(phase: dict) -> str:
    return " (ran out of prepared data!)" if phase["exhausted"] else ""


# ================================================================ the load generator (no Django)


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
        def p50_p95(values: list[float]) -> list[float]:
            if len(values) < 2:
                return [values[0] * 1000, values[0] * 1000] if values else [0.0, 0.0]
            q = statistics.quantiles(values, n=100, method="inclusive")
            return [statistics.median(values) * 1000, q[94] * 1000]

        p50, p95 = p50_p95(self.latencies)
        return {
            "completed": len(self.latencies),
            "seconds": seconds,
            "p50_ms": p50,
            "p95_ms": p95,
            "steps": {step: p50_p95(values) for step, values in self.steps.items()},
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


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m bench.http_load generate WORK RESULT")
