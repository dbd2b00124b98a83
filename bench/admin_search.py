"""The back office at scale: 1,000,000 users and certificates, the changelists and the searches
by 企保ネットコード, ユーザーID, 管理番号, e-mail and serial through the admin views, whole or in
part (prefixes, any case and width), and by a part of the company name.

The rows are loaded once with COPY (psycopg) and kept between runs (``BENCH_ADMIN_RELOAD=1``
loads them again). Each measure is a Django test Client request, signed in with the second
factor, as a supervisor (sees every desk) or as a clerk of one desk; p50 and p95 over
``BENCH_ADMIN_SAMPLES`` requests. The EXPLAIN ANALYZE of each search's queries is written to
``artifacts/bench/admin_search_explain.txt``.
"""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.core import CopyColumns, Result, percentiles, require_bench_database

N_USERS = int(os.environ.get("BENCH_ADMIN_USERS", "1000000"))
USERS_PER_CUSTOMER = 20
SAMPLES = int(os.environ.get("BENCH_ADMIN_SAMPLES", "40"))
P95_TARGET_MS = 150.0
CHUNK = 50_000

CODE_BASE = 50_000_000  # 企保ネットコード 5xxxxxxx: the bench's customers
ID_BASE = 50_000_000  # primary keys of the bench's rows
LAST_USER_ID = f"B{N_USERS - 1:06d}"
EXPLAIN_FILE = (
    Path(__file__).resolve().parents[1] / "artifacts" / "bench" / "admin_search_explain.txt"
)


def user_id(i: int) -> str:
    return f"B{i:06d}"


def management_number(i: int) -> str:
    return f"BM{i:08d}"


def email(i: int) -> str:
    return f"b{i}@bench-admin.example.jp"


def serial(i: int) -> str:
    return f"BE{i:010X}"


def kihonet_code(customer: int) -> str:
    return f"{CODE_BASE + customer:08d}"


# --- Loading --------------------------------------------------------------------------------


def _loaded() -> bool:
    from issuance.models import Certificate, KihonetUser

    return (
        KihonetUser.objects.filter(user_id=LAST_USER_ID).exists()
        and Certificate.objects.filter(serial=serial(N_USERS - 1)).exists()
    )


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    """COPY ``rows`` (tuples of text) into ``table``, CHUNK rows per write."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        buffer = io.StringIO()
        for n, row in enumerate(rows, 1):
            buffer.write("\t".join(row))
            buffer.write("\n")
            if n % CHUNK == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _delete_bench_rows(cursor) -> None:
    require_bench_database()
    low, high = ID_BASE, ID_BASE + N_USERS * 2
    cursor.execute("DELETE FROM issuance_certificate WHERE id >= %s AND id < %s", [low, high])
    cursor.execute("DELETE FROM issuance_kihonetuser WHERE id >= %s AND id < %s", [low, high])
    cursor.execute(
        "DELETE FROM issuance_customer_product_lines WHERE customer_id >= %s AND customer_id < %s",
        [low, high],
    )
    cursor.execute("DELETE FROM issuance_customer WHERE id >= %s AND id < %s", [low, high])


def _load() -> float:
    """Customers (20 users each), their product lines, 1,000,000 users and as many certificates
    whose expiries spread over three years."""
    from django.db import connection, transaction

    from issuance.models import Certificate, ProductLine

    lines = list(ProductLine.objects.order_by("pk").values_list("pk", flat=True))
    customers = N_USERS // USERS_PER_CUSTOMER
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own cursor, for COPY
        _delete_bench_rows(cursor)
        _copy(
            cursor,
            "issuance_customer",
            ["id", "kihonet_code", "name", "started_using", "created_at"],
            (
                (
                    str(ID_BASE + c),
                    kihonet_code(c),
                    f"ベンチ株式会社{c}",
                    "f" if c % 10 == 0 else "t",
                    stamp,
                )
                for c in range(customers)
            ),
        )
        _copy(
            cursor,
            "issuance_customer_product_lines",
            ["customer_id", "productline_id"],
            ((str(ID_BASE + c), str(lines[c % len(lines)])) for c in range(customers)),
        )
        _copy(
            cursor,
            "issuance_kihonetuser",
            ["id", "customer_id", "user_id", "management_number", "email", "created_at"],
            (
                (
                    str(ID_BASE + i),
                    str(ID_BASE + i // USERS_PER_CUSTOMER),
                    user_id(i),
                    management_number(i),
                    email(i),
                    stamp,
                )
                for i in range(N_USERS)
            ),
        )
        certificates = CopyColumns(Certificate, with_primary_key=True, text=True)
        _copy(
            cursor, certificates.table, certificates.columns, _certificate_rows(certificates, now)
        )
    with connection.cursor() as cursor:
        for table in (
            "issuance_customer",
            "issuance_customer_product_lines",
            "issuance_kihonetuser",
            "issuance_certificate",
        ):
            cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def _certificate_rows(columns: CopyColumns, now: datetime):
    for i in range(N_USERS):
        not_before = now - timedelta(minutes=(i * 1577) % (1095 * 24 * 60))
        not_after = not_before + timedelta(days=1095)
        yield columns.row(
            id=str(ID_BASE + i),
            user_id=str(ID_BASE + i),
            serial=serial(i),
            subject=f"CN={user_id(i)}",
            email=email(i),
            not_before=not_before.isoformat(),
            not_after=not_after.isoformat(),
            pem="-",
            fingerprint=f"bbbb{i:060x}",
            public_key_fingerprint=f"cccc{i:060x}",
            revocation_reason="",
            created_at=not_before.isoformat(),
        )


# --- Staff ----------------------------------------------------------------------------------


def _staff_client(username: str, role: str, desk_name: str | None):
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from issuance.models import ServiceDesk, StaffProfile

    user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
    user.groups.set([Group.objects.get(name=role)])
    if desk_name:
        StaffProfile.objects.update_or_create(
            user=user, defaults={"desk": ServiceDesk.objects.get(name=desk_name)}
        )
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


# --- Measuring ------------------------------------------------------------------------------


def _measure(client, url: str, params: dict, expect: int | None) -> tuple[float, float, int]:
    from django.db import connection

    for _ in range(3):  # warm the caches
        client.get(url, params)
    executed: list[str] = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    if expect is not None:
        first_column = "field-user_id" if "kihonetuser" in url else "field-serial"
        found = response.content.decode().count(f'class="{first_column}"')
        assert found == expect, (url, params, found)
    samples = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        client.get(url, params)
        samples.append((time.perf_counter() - start) * 1000)
    p50, p95 = percentiles(samples)
    return p50, p95, len(executed)


def _explain(client, url: str, params: dict) -> str:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        client.get(url, params)
    plans = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if "issuance_" not in sql or not sql.lstrip("( ").upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        plans.append(f"-- {sql}\n{plan}\n")
    return "\n".join(plans)


def _to_full_width(text: str) -> str:
    return text.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})


def _partial_cases(i: int) -> list[tuple[str, str, str, dict, int | None]]:
    """The searches staff type: parts and prefixes of the keys, any case and width, and parts
    of the company name (served by the pg_trgm GIN indexes). ``None``: a full page, capped."""
    users = "/admin/issuance/kihonetuser/"
    certificates = "/admin/issuance/certificate/"
    customer = i // USERS_PER_CUSTOMER
    return [
        ("supervisor", "users: part of ユーザーID", users, {"q": user_id(i)[1:]}, 1),
        ("supervisor", "users: prefix of ユーザーID (11 users)", users, {"q": user_id(i)[:6]}, 11),
        (
            "supervisor",
            "users: ユーザーID in full-width lower case",
            users,
            {"q": _to_full_width(user_id(i).lower())},
            1,
        ),
        ("supervisor", "users: part of 管理番号", users, {"q": management_number(i)[3:]}, 1),
        (
            "supervisor",
            "users: prefix of 企保ネットコード (100 customers)",
            users,
            {"q": kihonet_code(customer)[:6]},
            None,
        ),
        ("supervisor", "users: start of the e-mail", users, {"q": email(i).split("@")[0] + "@"}, 1),
        (
            "supervisor",
            "users: part of the company name (11 customers)",
            users,
            {"q": f"株式会社{customer // 10}"},
            None,
        ),
        (
            "supervisor",
            "users: company name part common to all",
            users,
            {"q": "ベンチ株式会社"},
            None,
        ),
        ("supervisor", "certificates: part of ユーザーID", certificates, {"q": user_id(i)[1:]}, 1),
        ("clerk", "users: part of ユーザーID", users, {"q": user_id(i)[1:]}, None),
        (
            "clerk",
            "users: part of the company name",
            users,
            {"q": f"株式会社{customer // 10}"},
            None,
        ),
    ]


def _cases(i: int) -> list[tuple[str, str, str, dict, int | None]]:
    users = "/admin/issuance/kihonetuser/"
    certificates = "/admin/issuance/certificate/"
    customer = i // USERS_PER_CUSTOMER
    return [
        ("supervisor", "users: changelist, no search", users, {}, None),
        (
            "supervisor",
            "users: by 企保ネットコード",
            users,
            {"q": kihonet_code(customer)},
            USERS_PER_CUSTOMER,
        ),
        ("supervisor", "users: by ユーザーID", users, {"q": user_id(i)}, 1),
        ("supervisor", "users: by 管理番号", users, {"q": management_number(i)}, 1),
        ("supervisor", "users: by e-mail", users, {"q": email(i)}, 1),
        ("supervisor", "users: by serial", users, {"q": serial(i)}, 1),
        ("supervisor", "certificates: changelist, no search", certificates, {}, None),
        ("supervisor", "certificates: by serial", certificates, {"q": serial(i)}, 1),
        ("supervisor", "certificates: by ユーザーID", certificates, {"q": user_id(i)}, 1),
        ("clerk", "users: changelist, no search", users, {}, None),
        ("clerk", "users: by ユーザーID", users, {"q": user_id(i)}, None),
        ("clerk", "users: by e-mail", users, {"q": email(i)}, None),
        ("clerk", "certificates: by serial", certificates, {"q": serial(i)}, None),
        *_partial_cases(i),
    ]


def _dashboard_results() -> list[Result]:
    """The dashboard's figures computed afresh (the page keeps them in the cache 5 minutes)."""
    from issuance.models import ServiceDesk
    from issuance.selectors.dashboard import dashboard

    results = []
    for desk in (None, ServiceDesk.objects.get(name="名古屋法人サービス課")):
        start = time.perf_counter()
        dashboard(desk)
        seconds = time.perf_counter() - start
        name = desk.name if desk else "all desks"
        results.append(
            Result(
                f"admin dashboard, uncached: {name}",
                seconds * 1000,
                "ms",
                note="cached for 5 minutes on the index page",
            )
        )
    return results


def run() -> list[Result]:
    from django.test.utils import override_settings

    with override_settings(DEBUG=False, ALLOWED_HOSTS=["localhost"]):
        return _run()


def _run() -> list[Result]:
    from issuance import roles

    results: list[Result] = []
    if os.environ.get("BENCH_ADMIN_RELOAD") == "1" or not _loaded():
        print(f"  loading {N_USERS:,} users and certificates with COPY ...", flush=True)
        seconds = _load()
        results.append(
            Result(
                f"admin: load {N_USERS:,} users + certificates (COPY)",
                seconds,
                "s",
                note="kept for later runs",
            )
        )
    results.extend(_dashboard_results())
    clients = {
        "supervisor": _staff_client("bench-supervisor", roles.SUPERVISOR, None),
        "clerk": _staff_client("bench-clerk", roles.CLERK, "名古屋法人サービス課"),
    }
    target = N_USERS * 3 // 4 + 17
    explains = []
    for who, label, url, params, expect in _cases(target):
        p50, p95, queries = _measure(clients[who], url, params, expect)
        name = f"admin {who}: {label}"
        results.append(Result(f"{name} p50", p50, "ms"))
        results.append(
            Result(
                f"{name} p95",
                p95,
                "ms",
                f"< {P95_TARGET_MS:.0f} ms",
                p95 < P95_TARGET_MS,
                note=f"{queries} queries per request",
            )
        )
        if params:
            explains.append(f"==== {name} {params}\n{_explain(clients[who], url, params)}")
    EXPLAIN_FILE.parent.mkdir(parents=True, exist_ok=True)
    EXPLAIN_FILE.write_text("\n".join(explains), encoding="utf-8")
    print(f"  EXPLAIN ANALYZE of the searches: {EXPLAIN_FILE}", flush=True)
    return results
