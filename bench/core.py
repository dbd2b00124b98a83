"""What every benchmark shares: the database it runs on, timing, and the result rows."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

# The benchmarks load millions of rows, truncate the reminder ledger and delete rows by id range:
# they run only on a database of their own, named by ``KIHONET_BENCH_DATABASE_URL``, never on
# the one ``DATABASE_URL`` names (the site's, or the tests').
BENCH_DATABASE_VARIABLE = "KIHONET_BENCH_DATABASE_URL"
BENCH_DATABASE_NAME = "kihonet_bench"
DEFAULT_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE_NAME}"


class NotTheBenchDatabase(SystemExit):
    """Raised before anything is touched when the configured database is not the benchmarks' own."""


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""


def bench_database_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The benchmarks' database URL; refuses any database that is not named ``kihonet_bench``.

    ``DATABASE_URL`` is ignored on purpose: ``.ci/run`` and production both export one.
    """
    import dj_database_url

    url = environ.get(BENCH_DATABASE_VARIABLE) or DEFAULT_DATABASE_URL
    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        raise NotTheBenchDatabase(f"{BENCH_DATABASE_VARIABLE} must name a PostgreSQL database")
    if config["NAME"] != BENCH_DATABASE_NAME:
        raise NotTheBenchDatabase(
            f"refusing to run the benchmarks on database {config['NAME']!r}: they delete and "
            f"truncate rows, so they run only on their own database {BENCH_DATABASE_NAME!r} "
            f"({BENCH_DATABASE_VARIABLE})"
        )
    return url


def setup_django() -> None:
    """Points Django at the benchmark database, creates it when missing, and migrates."""
    url = bench_database_url()
    # Every process the benchmarks start (gunicorn, workers) inherits this one.
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kihonet.settings")
    _create_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _create_database(url: str) -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        return
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples``."""
    quantiles = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), quantiles[94]


def require_bench_database() -> None:
    """Stops before a destructive statement unless Django is connected to the bench database."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if name != BENCH_DATABASE_NAME:
        raise NotTheBenchDatabase(
            f"refusing to delete rows in database {name!r}: not the benchmarks' own"
        )


class CopyColumns:
    """The columns of a bulk insert (PostgreSQL COPY) into a model's table, read from the model.

    Every concrete field of ``model`` is a column (the primary key only with
    ``with_primary_key``); ``row(**values)`` puts the values a bench supplies, by field
    ``attname`` (``user_id``, ``serial``), in the columns' order. A field the bench gives no value
    gets the field's default (taken once: the same for every row), so a field added to the model
    with a default needs no change in the benches; a value for a field the model does not have
    (a typo, or a field since removed) is refused, never silently dropped. ``text=True``: the defaults in COPY's text format (for a
    bench that writes its rows as text).
    """

    def __init__(self, model, *, with_primary_key: bool = False, text: bool = False) -> None:
        fields = [f for f in model._meta.concrete_fields if with_primary_key or not f.primary_key]
        self.table: str = model._meta.db_table
        self.columns: list[str] = [f.column for f in fields]
        self._defaults: list[tuple[str, object]] = [
            (f.attname, copy_text(f.get_default()) if text else f.get_default()) for f in fields
        ]

    @property
    def statement(self) -> str:
        return f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN"

    def row(self, **values: object) -> tuple:
        unknown = values.keys() - {name for name, _ in self._defaults}
        if unknown:
            raise ValueError(f"{self.table} has no column for {sorted(unknown)}")
        return tuple(values.get(name, default) for name, default in self._defaults)


def copy_text(value: object) -> str:
    """``value`` in COPY's text format (NULL is ``\\N``)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    for special, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(special, escaped)
    return text
