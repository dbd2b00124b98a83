"""One writer at a time for a named piece of work, until its transaction ends."""

from __future__ import annotations

from django.db import connection


def lock_until_commit(name: str) -> None:
    """Waits for, then holds, the transaction-scoped lock ``name`` (a PostgreSQL advisory lock,
    released when the transaction ends; SQLite runs one writing transaction at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
