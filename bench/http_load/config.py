"""The settings of ``bench http_load`` (from the environment), its targets and its own rows."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

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
