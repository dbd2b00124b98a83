"""CPU accounting from /proc: the CPU seconds of each party (gunicorn's workers, PostgreSQL,
Redis, the generator) and of the whole machine, as snapshots and their differences."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.http_load.server import Gunicorn


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
    return pids


def _postgres_pids(database: str) -> list[int]:
    """PostgreSQL's processes that work for the bench: the backends connected to its database
    and the background ones (WAL writer, checkpointer, ...), not the other databases' clients."""
    pids = []
    for pid in _pids_named("postgres"):
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            client = "(" in title or "[local]" in title
            if not client or f" {database} " in title:
                pids.append(pid)
    return pids


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def cpu_snapshot(server: Gunicorn, generator_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds per process of each party, and of the whole machine (pid 0)."""
    busy, total = _machine_cpu()
    groups = {
        "gunicorn": server.worker_pids(),
        "postgres": _postgres_pids(server.database),
        "redis": _pids_named("redis-server"),
        "generator": [generator_pid],
    }
    snapshot = {name: {pid: _process_cpu(pid) for pid in pids} for name, pids in groups.items()}
    snapshot["machine busy"] = {0: busy}
    snapshot["machine total"] = {0: total}
    snapshot["wall"] = {0: time.perf_counter()}
    return snapshot


def cpu_delta(start: dict, end: dict) -> dict[str, float]:
    """Per party, the CPU time its processes used between the two snapshots (a process that
    started in between counts from zero; one that ended in between is not counted)."""
    return {
        name: sum(seconds - start[name].get(pid, 0.0) for pid, seconds in pids.items())
        for name, pids in end.items()
    }
