"""The daily reminder job (R10) on 1,000,000 certificates, mailing to a local SMTP server.

The certificates (expiries spread evenly over the three years after the run day, 1 % revoked,
half of those inside the 30-day window already renewed) are loaded once with PostgreSQL COPY
and kept between runs; the reminder records are emptied at the start of each run.  Two runs are
measured: the first day (every certificate of the 30-day window is due: the catch-up) and the
day after (the steady state).  The SMTP server (aiosmtpd) runs in a subprocess on a free loopback
port, so that it does not share this process' interpreter lock; the time spent in the SMTP
backend (connect, send, quit) is measured and reported apart.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.mail.backends.smtp import EmailBackend

from bench.core import CopyColumns, Result, rate, require_bench_database

N_CERTIFICATES = int(os.environ.get("BENCH_REMINDERS_CERTIFICATES", "1000000"))
N_CUSTOMERS = 10_000
SECONDS_TARGET = 60.0

JST = ZoneInfo("Asia/Tokyo")
RUN_DAY = datetime(2035, 4, 2, tzinfo=JST).date()  # far from every other bench's certificates
SPAN = timedelta(days=3 * 365)
WINDOW = timedelta(days=30)

# The bench's own rows, apart from everything else in the database.
CUSTOMER_CODE_PREFIX = "98"
MARKER_CODE = "98999999"
USER_PREFIX = "Z"
BASE_SERIAL_PREFIX = "BE"
RENEWAL_SERIAL_PREFIX = "BF"
EMAIL_DOMAIN = "bench-reminders.example.jp"


# --- the SMTP side -------------------------------------------------------------------------


class TimedSMTPBackend(EmailBackend):
    """Django's SMTP backend, adding up the time spent talking to the server."""

    seconds = 0.0

    def open(self):
        start = time.perf_counter()
        try:
            return super().open()
        finally:
            TimedSMTPBackend.seconds += time.perf_counter() - start

    def close(self):
        start = time.perf_counter()
        try:
            return super().close()
        finally:
            TimedSMTPBackend.seconds += time.perf_counter() - start

    def send_messages(self, email_messages):
        start = time.perf_counter()
        try:
            return super().send_messages(email_messages)
        finally:
            TimedSMTPBackend.seconds += time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SMTP_SERVER = """
import signal, sys, threading
from aiosmtpd.controller import Controller

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counter.count += 1
        return "250 2.0.0 OK"

done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
controller = Controller(Counter(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
done.wait()
controller.stop()
print(Counter.count, flush=True)
"""


class SmtpServer:
    """aiosmtpd in a subprocess, counting the messages it accepts."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", SMTP_SERVER, str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server did not start")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return int(out.strip() or 0)


# --- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    base: int  # certificates spread over the three years
    renewed: list[int]  # the base certificates (index) renewed already

    @property
    def total(self) -> int:
        return self.base + len(self.renewed)


def _layout(total: int) -> Layout:
    """Base certificates plus renewals (every other one inside the window) making ``total``."""
    base = round(total / (1 + WINDOW / SPAN / 2))
    while True:
        renewed = _in_window(base)[::2]
        if base + len(renewed) == total:
            return Layout(base, renewed)
        base += total - (base + len(renewed))


def _in_window(base: int) -> list[int]:
    start, end = _run_at(), _run_at() + WINDOW
    last = int(base * (WINDOW / SPAN)) + 100
    return [i for i in range(min(last, base)) if _not_after(i, base, start) < end]


def _run_at(days: int = 0) -> datetime:
    from notifications.selectors import daily_run_time

    return daily_run_time(RUN_DAY + timedelta(days=days))


def _not_after(i: int, base: int, start: datetime) -> datetime:
    """Evenly over three years from the run, at a minute that varies from one to the next."""
    return start + SPAN * ((i + 0.5) / base) + timedelta(minutes=(i * 7919) % 1440 - 720)


def _hex(kind: str, i: int) -> str:
    return hashlib.sha256(f"bench-reminders-{kind}-{i}".encode()).hexdigest()


def _loaded(layout: Layout) -> bool:
    from issuance.models import Certificate, Customer

    marker = Customer.objects.filter(kihonet_code=MARKER_CODE).first()
    return (
        marker is not None
        and marker.name == f"bench reminders {layout.total}"
        and Certificate.objects.filter(
            serial=f"{BASE_SERIAL_PREFIX}{layout.base - 1:014X}"
        ).exists()
    )


def _delete_bench_rows() -> None:
    require_bench_database()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notifications_expiryreminder")
        cursor.execute(
            "DELETE FROM issuance_certificate WHERE user_id IN (SELECT u.id FROM "
            "issuance_kihonetuser u JOIN issuance_customer c ON c.id = u.customer_id "
            "WHERE c.kihonet_code LIKE %s)",
            [f"{CUSTOMER_CODE_PREFIX}%"],
        )
        cursor.execute(
            "DELETE FROM issuance_kihonetuser WHERE customer_id IN (SELECT id FROM "
            "issuance_customer WHERE kihonet_code LIKE %s)",
            [f"{CUSTOMER_CODE_PREFIX}%"],
        )
        cursor.execute(
            "DELETE FROM issuance_customer_product_lines WHERE customer_id IN (SELECT id FROM "
            "issuance_customer WHERE kihonet_code LIKE %s)",
            [f"{CUSTOMER_CODE_PREFIX}%"],
        )
        cursor.execute(
            "DELETE FROM issuance_customer WHERE kihonet_code LIKE %s", [f"{CUSTOMER_CODE_PREFIX}%"]
        )


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _load(layout: Layout) -> float:
    from django.db import connection, transaction

    from issuance.models import Certificate, Customer, KihonetUser, ProductLine

    started = time.perf_counter()
    start = _run_at()
    now = datetime.now(JST)
    lines = list(ProductLine.objects.values_list("pk", flat=True))
    rng = random.Random(20350402)  # noqa: S311 - test data, not secrets
    with transaction.atomic():
        _delete_bench_rows()
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            _copy(
                cursor,
                "issuance_customer",
                ["kihonet_code", "name", "started_using", "created_at"],
                (
                    (f"{CUSTOMER_CODE_PREFIX}{c:06d}", f"ベンチ株式会社{c}", True, now)
                    for c in range(N_CUSTOMERS)
                ),
            )
        customers = dict(
            Customer.objects.filter(kihonet_code__startswith=CUSTOMER_CODE_PREFIX).values_list(
                "kihonet_code", "pk"
            )
        )
        customer_ids = [customers[f"{CUSTOMER_CODE_PREFIX}{c:06d}"] for c in range(N_CUSTOMERS)]
        with connection.connection.cursor() as cursor:
            _copy(
                cursor,
                "issuance_customer_product_lines",
                ["customer_id", "productline_id"],
                (
                    (customer, line)
                    for customer in customer_ids
                    for line in rng.sample(lines, rng.choice((1, 1, 2)))
                ),
            )
            _copy(
                cursor,
                "issuance_kihonetuser",
                ["customer_id", "user_id", "management_number", "email", "created_at"],
                (
                    (
                        customer_ids[i % N_CUSTOMERS],
                        f"{USER_PREFIX}{i:06X}",
                        f"ZM{i:08d}",
                        f"u{i}@{EMAIL_DOMAIN}",
                        now,
                    )
                    for i in range(layout.base)
                ),
            )
        users = dict(
            KihonetUser.objects.filter(user_id__startswith=USER_PREFIX).values_list("user_id", "pk")
        )
        with connection.connection.cursor() as cursor:
            certificates = CopyColumns(Certificate)
            _copy(
                cursor,
                certificates.table,
                certificates.columns,
                (_base_row(certificates, i, layout, users, now, start) for i in range(layout.base)),
            )
            _copy_renewals(cursor, certificates, layout, users, now)
            customer_marker = (MARKER_CODE, f"bench reminders {layout.total}", True, now)
            _copy(
                cursor,
                "issuance_customer",
                ["kihonet_code", "name", "started_using", "created_at"],
                [customer_marker],
            )
    return time.perf_counter() - started


_PEM = "-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----\n"


def _base_row(
    columns: CopyColumns,
    i: int,
    layout: Layout,
    users: dict[str, int],
    now: datetime,
    start: datetime,
) -> tuple:
    return _certificate_row(
        columns,
        i,
        users,
        now,
        serial=f"{BASE_SERIAL_PREFIX}{i:014X}",
        not_after=_not_after(i, layout.base, start),
        revoked=i % 100 == 99,
    )


def _certificate_row(
    columns: CopyColumns,
    i: int,
    users: dict[str, int],
    now: datetime,
    *,
    serial: str,
    not_after: datetime,
    revoked: bool = False,
    renewed_from: int | None = None,
    kind: str = "",
) -> tuple:
    user_id = f"{USER_PREFIX}{i:06X}"
    return columns.row(
        user_id=users[user_id],
        renewed_from_id=renewed_from,
        serial=serial,
        subject=f"CN={user_id}",
        email=f"u{i}@{EMAIL_DOMAIN}",
        not_before=not_after - SPAN,
        not_after=not_after,
        pem=_PEM,
        fingerprint=_hex(f"{kind}cert", i),
        public_key_fingerprint=_hex(f"{kind}key", i),
        revocation_reason="keyCompromise" if revoked else "",
        revoked_at=now if revoked else None,
        created_at=now,
    )


def _copy_renewals(
    cursor, columns: CopyColumns, layout: Layout, users: dict[str, int], now: datetime
) -> None:
    start = _run_at()
    serials = [f"{BASE_SERIAL_PREFIX}{i:014X}" for i in layout.renewed]
    cursor.execute("SELECT serial, id FROM issuance_certificate WHERE serial = ANY(%s)", [serials])
    base_ids = dict(cursor.fetchall())
    rows = [
        _certificate_row(
            columns,
            i,
            users,
            now,
            serial=f"{RENEWAL_SERIAL_PREFIX}{i:014X}",
            not_after=_not_after(i, layout.base, start) + SPAN - timedelta(days=20),
            renewed_from=base_ids[f"{BASE_SERIAL_PREFIX}{i:014X}"],
            kind="renewal-",
        )
        for i in layout.renewed
    ]
    _copy(cursor, columns.table, columns.columns, rows)


# --- the runs ------------------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    smtp_seconds: float
    queries: int
    sent: int
    received: int

    @property
    def without_smtp(self) -> float:
        return self.seconds - self.smtp_seconds


def _measure(day: int) -> Measured:
    from django.db import connection

    from notifications.services import job

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    server = SmtpServer()
    overrides = _mail_settings(server.port)
    overrides.enable()
    TimedSMTPBackend.seconds = 0.0
    try:
        with connection.execute_wrapper(count):
            start = time.perf_counter()
            run = job.send_expiry_reminders(at=_run_at(day))
            seconds = time.perf_counter() - start
    finally:
        overrides.disable()
        received = server.stop()
    sent = sum(c.sent for c in run.counts.values())
    failed = sum(c.failed + c.retrying for c in run.counts.values())
    if failed:
        raise RuntimeError(f"{failed} mails failed")
    return Measured(seconds, TimedSMTPBackend.seconds, queries, sent, received)


def _mail_settings(port: int):
    from django.test.utils import override_settings

    return override_settings(
        EMAIL_BACKEND="bench.reminders.TimedSMTPBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        EMAIL_TIMEOUT=30,
        DEFAULT_FROM_EMAIL="kihonet@example.jp",
        KIHONET_BASE_URL="https://kihonet.example.jp",
    )


def _explain(day: int, title: str) -> str:
    """The plans of the first batch of each stage's due-certificates query, as run."""
    from notifications import selectors
    from notifications.models import ExpiryReminder

    texts = []
    for stage in (ExpiryReminder.Stage.DAYS_7, ExpiryReminder.Stage.DAYS_30):
        query = selectors.due_certificates_batch_query(at=_run_at(day), stage=stage, limit=1000)
        plan = query.explain(analyze=True, buffers=True)
        texts.append(f"EXPLAIN (ANALYZE, BUFFERS), {stage.value}-day stage, {title}:\n{plan}")
    print("\n\n".join(texts), flush=True)
    return "\n\n".join(texts)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE issuance_certificate")
        cursor.execute("ANALYZE notifications_expiryreminder")


def run() -> list[Result]:
    from django.db import connection
    from django.test.utils import override_settings

    if connection.vendor != "postgresql":
        raise RuntimeError("the reminders bench needs PostgreSQL (DATABASE_URL)")
    with override_settings(DEBUG=False):
        return _run()


def _run() -> list[Result]:
    from django.db import connection

    layout = _layout(N_CERTIFICATES)
    notes = []
    if _loaded(layout):
        print(f"  reusing the {layout.total:,} certificates loaded before", flush=True)
    else:
        print(f"  loading {layout.total:,} certificates with COPY ...", flush=True)
        seconds = _load(layout)
        notes.append(f"loaded {layout.total:,} certificates in {seconds:.1f} s")
        print(f"  loaded in {seconds:.1f} s", flush=True)
    require_bench_database()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notifications_expiryreminder")
    _analyze()
    _explain(0, "first day (nothing sent yet)")
    first = _measure(0)
    _analyze()
    _explain(1, "the next day (the window's mails recorded)")
    second = _measure(1)
    for label, m in (("first day", first), ("next day", second)):
        print(
            f"  {label}: {m.sent} mails ({m.received} received), {m.seconds:.2f} s, "
            f"SMTP {m.smtp_seconds:.2f} s, {m.queries} queries",
            flush=True,
        )
    return _results("first day: catch-up of the 30-day window", first, notes) + _results(
        "next day: steady state", second, []
    )


def _results(label: str, m: Measured, notes: list[str]) -> list[Result]:
    prefix = f"reminders {N_CERTIFICATES:,} certs, {label}"
    return [
        Result(
            f"{prefix}: mails sent",
            m.sent,
            "mails",
            note=f"{m.received} received by the SMTP server" + "".join(f"; {n}" for n in notes),
        ),
        Result(f"{prefix}: run time", m.seconds, "s"),
        Result(
            f"{prefix}: run time excluding SMTP",
            m.without_smtp,
            "s",
            f"< {SECONDS_TARGET:.0f} s",
            m.without_smtp < SECONDS_TARGET,
        ),
        Result(f"{prefix}: SMTP time", m.smtp_seconds, "s"),
        Result(f"{prefix}: mails per second", rate(m.sent, m.seconds), "mails/s"),
        Result(f"{prefix}: database queries", m.queries, "queries"),
    ]
