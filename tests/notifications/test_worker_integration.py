"""R10 end to end: real Celery workers (subprocesses) on Redis, PostgreSQL and a real SMTP server.

The workers run ``celery -A kihonet worker`` with the test database's name in DATABASE_URL, a
Redis database of their own (/5) and a queue of the test's own.  The data is committed
(``transaction=True``), so the workers see it.  A transactional test empties every table at its
end, the contact table of the migrations too, so each test loads that again (R15).
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from celery import Celery
from django.apps import apps
from django.db import connection
from django.utils import timezone

from notifications.emails import format_jst
from notifications.models import ExpiryReminder
from tests.conftest import require
from tests.notifications.helpers import make_certificate, renew
from tests.notifications.smtp import RecordingHandler, SmtpServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.smtp,
    pytest.mark.slow,
]

BASE_DIR = Path(__file__).resolve().parents[2]
REDIS_DB = 5
TASK = "notifications.tasks.send_expiry_reminders"
WAIT_SECONDS = 90


# --- the services --------------------------------------------------------------------------


def broker_url() -> str:
    """CI's Redis (CELERY_BROKER_URL) with the database number of these tests."""
    base = urlsplit(os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit((base.scheme, base.netloc, f"/{REDIS_DB}", "", ""))


def redis_available(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def test_database_url() -> str:
    """The database pytest-django made for this run, for the workers."""
    s = connection.settings_dict
    credentials = quote(s["USER"] or "", safe="")
    if s["PASSWORD"]:
        credentials += ":" + quote(s["PASSWORD"], safe="")
    return (
        f"postgres://{credentials}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/"
        f"{quote(s['NAME'], safe='')}"
    )


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def broker() -> str:
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    url = broker_url()
    require(redis_available(url), "Redis (set CELERY_BROKER_URL)")
    return url


@pytest.fixture(autouse=True)
def contact_table() -> None:
    """The manual's contact table (R15), gone if an earlier transactional test emptied it."""
    migration = importlib.import_module("issuance.migrations.0002_contact_table")
    migration.load_contacts(apps, None)


@pytest.fixture
def queue(broker) -> Iterator[str]:
    name = f"kihonet-test-{uuid.uuid4().hex[:12]}"
    yield name
    redis.Redis.from_url(broker).delete(name)


@pytest.fixture
def client_app(broker, monkeypatch) -> Iterator[Celery]:
    # Celery prefers the environment's CELERY_BROKER_URL to the app's own broker setting.
    monkeypatch.setenv("CELERY_BROKER_URL", broker)
    app = Celery("kihonet-test-client", broker=broker, backend=broker)
    app.conf.result_extended = True
    yield app
    app.close()


# --- the workers ---------------------------------------------------------------------------


class Workers:
    """Starts ``celery -A kihonet worker`` subprocesses and stops them at the end of the test."""

    def __init__(self, *, broker: str, queue: str, app: Celery, tmp_path: Path) -> None:
        self.broker, self.queue, self.app, self.tmp_path = broker, queue, app, tmp_path
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, *, smtp_port: int, batch_size: int = 1000) -> str:
        hostname = f"{name}@{socket.gethostname()}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.notifications.worker_settings",
            "DATABASE_URL": test_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": self.broker,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "10",
            "KIHONET_TEST_QUEUE": self.queue,
            "KIHONET_REMINDER_BATCH_SIZE": str(batch_size),
        }
        log = self.tmp_path / f"{name}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kihonet",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-n",
                hostname,
                "-Q",
                self.queue,
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append((hostname, process, log))
        self._wait_until_ready(hostname, process, log)
        return hostname

    def _wait_until_ready(self, hostname: str, process: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"worker {hostname} exited:\n{log.read_text()}")
            if self.app.control.ping(destination=[hostname], timeout=0.5):
                return
        pytest.fail(f"worker {hostname} did not start:\n{log.read_text()}")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{log.read_text()}" for name, _, log in self.processes)

    def stop(self) -> None:
        for _, process, _ in self.processes:
            process.terminate()
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(broker, queue, client_app, tmp_path) -> Iterator[Workers]:
    started = Workers(broker=broker, queue=queue, app=client_app, tmp_path=tmp_path)
    yield started
    started.stop()


def run_job(app: Celery, queue: str):
    return app.send_task(TASK, kwargs={}, queue=queue)


def wait_for(condition: Callable[[], bool], workers: Workers, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{workers.logs()}")


# --- the tests -----------------------------------------------------------------------------


def test_r10_r15_a_worker_mails_each_due_certificate_once_and_a_rerun_sends_nothing(
    workers, client_app, queue
):
    now = timezone.now()
    thirty = make_certificate(not_after=now + timedelta(days=20))
    seven = make_certificate(not_after=now + timedelta(days=3))
    renewed_seven = make_certificate(not_after=now + timedelta(days=5))
    renewal = renew(renewed_seven)
    renewed_thirty = make_certificate(not_after=now + timedelta(days=20))
    renew(renewed_thirty)
    make_certificate(not_after=now + timedelta(days=40))  # not due yet
    make_certificate(not_after=now + timedelta(days=3), revoked=True)
    make_certificate(not_after=now - timedelta(days=1))  # expired

    with SmtpServer(RecordingHandler()) as smtp:
        workers.start("w1", smtp_port=smtp.port)
        result = run_job(client_app, queue).get(timeout=WAIT_SECONDS)
        assert result["counts"]["30"]["sent"] == 1
        assert result["counts"]["7"]["sent"] == 2
        expected = {
            f"<reminder-30-{thirty.serial}@example.jp>": thirty,
            f"<reminder-7-{seven.serial}@example.jp>": seven,
            f"<reminder-7-{renewed_seven.serial}@example.jp>": renewed_seven,
        }
        assert smtp.handler.message_ids() == {message_id: 1 for message_id in expected}

        for message_id, certificate in expected.items():
            message = smtp.handler.by_message_id(message_id)
            assert message["To"] == certificate.email
            assert message["Subject"].strip().startswith("【企保ネット】")
            text = message.get_body(preferencelist=("plain",)).get_content()
            html = message.get_body(preferencelist=("html",)).get_content()
            for body in (text, html):
                assert certificate.user.customer.name in body
                assert certificate.user.user_id in body
                assert "団体保険課" in body and "0120-338-688" in body  # R15
                assert "受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）" in body
        renewed_text = (
            smtp.handler.by_message_id(f"<reminder-7-{renewed_seven.serial}@example.jp>")
            .get_body(preferencelist=("plain",))
            .get_content()
        )
        assert "すでに更新のお手続きが完了しています" in renewed_text
        assert (
            f"新しいクライアント証明書の有効期限は {format_jst(renewal.not_after)} です"
            in renewed_text
        )
        seven_text = (
            smtp.handler.by_message_id(f"<reminder-7-{seven.serial}@example.jp>")
            .get_body(preferencelist=("plain",))
            .get_content()
        )
        assert "https://kihonet.example.jp/renew/" in seven_text

        again = run_job(client_app, queue).get(timeout=WAIT_SECONDS)
        assert again["counts"]["30"]["sent"] == again["counts"]["7"]["sent"] == 0
        assert len(smtp.handler.messages) == 3
    assert set(ExpiryReminder.objects.values_list("status", flat=True)) == {"sent"}


def test_r10_two_workers_running_the_job_at_once_send_nothing_twice(workers, client_app, queue):
    now = timezone.now()
    certificates = [
        make_certificate(not_after=now + timedelta(days=10, minutes=n)) for n in range(60)
    ]
    with SmtpServer(RecordingHandler(delay=0.01)) as smtp:
        names = {workers.start(name, smtp_port=smtp.port, batch_size=10) for name in ("w1", "w2")}
        first, second = run_job(client_app, queue), run_job(client_app, queue)
        results = [first.get(timeout=WAIT_SECONDS), second.get(timeout=WAIT_SECONDS)]
        assert {first.worker, second.worker} == names  # the two ran on both workers
        assert smtp.handler.message_ids() == {
            f"<reminder-30-{c.serial}@example.jp>": 1 for c in certificates
        }
    assert sum(r["counts"]["30"]["sent"] for r in results) == 60
    assert ExpiryReminder.objects.filter(status="sent").count() == 60


def test_r10_an_smtp_server_failing_the_first_tries_still_gets_every_mail_once(
    workers, client_app, queue
):
    now = timezone.now()
    certificates = [make_certificate(not_after=now + timedelta(days=20 - n)) for n in range(3)]
    with SmtpServer(RecordingHandler(fail_first=4)) as smtp:
        workers.start("w1", smtp_port=smtp.port)
        result = run_job(client_app, queue).get(timeout=WAIT_SECONDS)
        assert result["counts"]["30"]["retrying"] == 3  # the first three tries got 451
        wait_for(
            lambda: ExpiryReminder.objects.filter(status="sent").count() == 3,
            workers,
            "the retries",
        )
        assert smtp.handler.message_ids() == {
            f"<reminder-30-{c.serial}@example.jp>": 1 for c in certificates
        }
        assert smtp.handler.attempts == 4 + 3
    assert sum(ExpiryReminder.objects.values_list("attempts", flat=True)) == 3 + 4
