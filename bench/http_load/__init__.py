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

import json
import secrets
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.http_load.checks import check_database
from bench.http_load.config import N_RENEWAL_CERTS, PACED_RATE, SECONDS, USERS, WARMUP_SECONDS
from bench.http_load.report import results
from bench.http_load.scenario import bench_notices, delete_previous_run, renewal_certificates
from bench.http_load.server import Gunicorn, drive_generator, flush_redis, free_port


def run():
    from django.test.utils import override_settings
    from django.utils import timezone

    from issuance import ca

    workdir = Path(tempfile.mkdtemp(prefix="kihonet-bench-http-"))
    port = free_port()
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
    flush_redis()
    started = time.perf_counter()
    delete_previous_run()
    notices = bench_notices()
    renewals = renewal_certificates(N_RENEWAL_CERTS)
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
        cpu = drive_generator(work, result_path, server)
    finally:
        server.stop()
    result = json.loads(result_path.read_text())
    problems = check_database(result)
    return results(result, cpu, problems, server)
