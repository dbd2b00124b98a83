"""What every benchmark shares: the database it runs on, timing, and the result rows."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

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
