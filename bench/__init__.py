"""Benchmarks: `make bench` runs every module listed in ``BENCHMARKS`` and prints one table.

Each module has ``run() -> list[Result]``. The benchmarks run on PostgreSQL, only on their own
database ``kihonet_bench`` (``KIHONET_BENCH_DATABASE_URL``; ``DATABASE_URL`` is ignored), created
when missing and migrated; any other database is refused before anything is touched.
"""
