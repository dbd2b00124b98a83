"""The processes under test and the load generator's: gunicorn (started, awaited, stopped),
the bench's Redis databases, and the generator run with the CPU of every party sampled around
each timed window."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.http_load.config import (
    CACHE_URL,
    CELERY_BROKER_URL,
    PYSPY_OUTPUT,
    REPO,
    SECONDS,
    THREADS,
    WORKER_CLASS,
    WORKERS,
)
from bench.http_load.cpu import cpu_delta, cpu_snapshot


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flush_redis() -> None:
    """The bench's own cache and broker databases: no lock or queued task of an earlier run."""
    import redis

    for url in (CACHE_URL, CELERY_BROKER_URL):
        redis.Redis.from_url(url).flushdb()


class Gunicorn:
    def __init__(self, port: int, workdir: Path, passphrase: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "gunicorn.log"
        self.passphrase = passphrase
        self.workdir = workdir
        self.database = dj_database_url_name(os.environ["DATABASE_URL"])
        self.process: subprocess.Popen | None = None
        self.description = f"gunicorn {WORKER_CLASS} x {WORKERS} workers" + (
            f" x {THREADS} threads" if WORKER_CLASS == "gthread" else ""
        )

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "kihonet.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            WORKER_CLASS,
            "--backlog",
            "2048",
            "--keep-alive",
            "10",
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log),
        ]
        if WORKER_CLASS == "gthread":
            command += ["--threads", str(THREADS)]
        return command

    def environment(self) -> dict[str, str]:
        from django.conf import settings

        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kihonet.settings",
            "KIHONET_ENV": "development",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": os.environ["DATABASE_URL"],
            # Connections kept for the whole run (60 s by default would replace every one of
            # them inside the timed window, and their CPU could not be counted).
            "DATABASE_CONN_MAX_AGE": "600",
            "CACHE_URL": CACHE_URL,
            "CELERY_BROKER_URL": CELERY_BROKER_URL,
            "KIHONET_CA_DIR": str(settings.KIHONET_CA_DIR),
            "KIHONET_CA_PASSPHRASE": self.passphrase,
            "KIHONET_CA_PASSPHRASE_FILE": "",
            "KIHONET_BASE_URL": self.url,
        }

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            self.command(),
            cwd=REPO,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with opener.open(f"{self.url}/api/v1/openapi.json", timeout=2) as answer:
                    if answer.status == 200:
                        print(f"  {self.description} on {self.url}", flush=True)
                        return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def dj_database_url_name(url: str) -> str:
    import dj_database_url

    return dj_database_url.parse(url)["NAME"]


def drive_generator(work: Path, result_path: Path, server: Gunicorn) -> dict[str, dict]:
    """Runs the generator; samples the CPU of every party at the start and end of each timed
    window (the generator says when on its standard output)."""
    process = subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "bench.http_load", "generate", str(work), str(result_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    starts: dict[str, dict] = {}
    windows: dict[str, dict] = {}
    spy: subprocess.Popen | None = None
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        kind, _, phase = line.partition(" ")
        if kind == "START":
            starts[phase] = cpu_snapshot(server, process.pid)
            pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            if phase == "acquisition" and PYSPY_OUTPUT and Path(pyspy).exists():
                spy = subprocess.Popen(  # noqa: S603
                    [
                        pyspy,
                        "record",
                        "--pid",
                        str(server.process.pid),
                        "--subprocesses",
                        "--duration",
                        str(int(SECONDS) - 2),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        PYSPY_OUTPUT,
                        "--nonblocking",
                        "--gil",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        elif kind == "END":
            end = cpu_snapshot(server, process.pid)
            windows[phase] = cpu_delta(starts[phase], end)
        else:
            print(f"  {line}", flush=True)
    if process.wait() != 0:
        raise RuntimeError(f"the load generator failed with exit code {process.returncode}")
    if spy is not None:
        spy.wait(timeout=120)
        print(f"  py-spy profile of the acquisition window: {PYSPY_OUTPUT}", flush=True)
    return windows
