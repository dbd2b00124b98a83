"""Benchmarks: `make bench` runs every module listed in ``BENCHMARKS`` and prints one table.

Each module has ``run() -> list[Result]``. The benchmarks run on PostgreSQL (``DATABASE_URL``,
by default the local database ``kihonet_bench``, created when missing and migrated).
"""
