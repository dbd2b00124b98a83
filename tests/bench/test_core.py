"""The benchmarks delete and truncate rows: they must never run on a database but their own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from bench import core
from issuance.models import Customer
from tests.conftest import require
from tests.factories import make_customer

REPO = Path(__file__).resolve().parents[2]


def test_the_exported_database_url_is_ignored():
    environ = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
    assert core.bench_database_url(environ) == core.DEFAULT_DATABASE_URL


@pytest.mark.parametrize("name", ["test", "kihonet", "kihonet_bench_old", "test_kihonet_bench"])
def test_a_database_not_named_kihonet_bench_is_refused(name):
    environ = {core.BENCH_DATABASE_VARIABLE: f"postgres://postgres@127.0.0.1:5432/{name}"}
    with pytest.raises(core.NotTheBenchDatabase, match=repr(name)):
        core.bench_database_url(environ)


def test_sqlite_is_refused():
    environ = {core.BENCH_DATABASE_VARIABLE: "sqlite:///kihonet_bench"}
    with pytest.raises(core.NotTheBenchDatabase, match="PostgreSQL"):
        core.bench_database_url(environ)


def test_a_destructive_step_refuses_the_tests_database(db):
    """The second guard, inside every DELETE/TRUNCATE helper, reads the live connection."""
    from bench import reminders

    make_customer(kihonet_code=f"{reminders.CUSTOMER_CODE_PREFIX}000001")
    with pytest.raises(core.NotTheBenchDatabase, match=connection.settings_dict["NAME"]):
        reminders._delete_bench_rows()
    assert Customer.objects.filter(kihonet_code=f"{reminders.CUSTOMER_CODE_PREFIX}000001").exists()


@pytest.mark.postgres
def test_make_bench_on_the_ci_database_touches_nothing(transaction_db_rows):
    """``.ci/run`` exports ``DATABASE_URL``; a bench started pointed at that database stops
    before it connects, and the rows there are all still present."""
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")  # committed rows
    name = connection.settings_dict["NAME"]
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    environ = {**os.environ, "DATABASE_URL": url, core.BENCH_DATABASE_VARIABLE: url}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "reminders"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "refusing to run the benchmarks" in result.stderr
    assert Customer.objects.filter(pk__in=transaction_db_rows).count() == len(transaction_db_rows)


@pytest.fixture
def transaction_db_rows(transactional_db):
    from bench import reminders

    return [
        make_customer(kihonet_code=f"{reminders.CUSTOMER_CODE_PREFIX}{i:06d}").pk for i in range(3)
    ]
