"""R10 after a crash: ``kill -9`` of the reminder job sends at most the one mail in flight twice.

The job runs as operators run it (``manage.py send_expiry_reminders``) in a subprocess, against
the test database and a real SMTP server (aiosmtpd). It is killed with SIGKILL at seeded random
points, after some of a batch's mails were accepted; the claims it left then have their lease
run out (their ``next_attempt_at`` is moved to the past, as 15 minutes would) and the job runs
again. Every certificate gets its mail of each due stage, and each kill adds one repeat at most.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from notifications.emails import message_id
from notifications.models import ExpiryReminder
from tests.notifications.helpers import jst, make_certificate
from tests.notifications.smtp import RecordingHandler, SmtpServer
from tests.notifications.test_worker_integration import (  # noqa: F401 (an autouse fixture)
    contact_table,
    test_database_url,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.smtp,
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2029-10-30"  # the job runs as 09:00 JST that day
DUE_30 = jst(2029, 11, 20, 13, 45)  # 21 days on: the 30-day mail
DUE_7 = jst(2029, 11, 3, 13, 45)  # 4 days on: the 7-day mail
PER_STAGE = 15
SEED = 20261201
KILLS = 3
WAIT_SECONDS = 90

Status = ExpiryReminder.Status


def start_job(smtp_port: int, log: Path) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIHONET_", "DJANGO_", "CELERY_", "EMAIL_"))
    }
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "10",
            "DEFAULT_FROM_EMAIL": "kihonet@example.jp",
            "KIHONET_BASE_URL": "https://kihonet.example.jp",
            "LOG_LEVEL": "INFO",
        }
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "send_expiry_reminders", "--today", TODAY],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def leases_run_out() -> None:
    """What 15 minutes do to the claims of a killed job: they are due for a re-run."""
    ExpiryReminder.objects.filter(status=Status.SENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_r10_kill_9_after_accepted_mails_repeats_at_most_the_mail_in_flight(tmp_path):
    rng = random.Random(SEED)
    certificates = [make_certificate(not_after=DUE_30) for _ in range(PER_STAGE)]
    certificates += [make_certificate(not_after=DUE_7) for _ in range(PER_STAGE)]
    expected = {message_id(30, c.serial) for c in certificates[:PER_STAGE]}
    expected |= {message_id(7, c.serial) for c in certificates[PER_STAGE:]}
    handler = RecordingHandler(delay=0.02)
    log = tmp_path / "job.log"
    kills = 0
    with SmtpServer(handler) as smtp:
        for _ in range(KILLS):
            kill_at = len(handler.messages) + rng.randint(2, 8)  # mails accepted by this run
            job = start_job(smtp.port, log)
            deadline = time.monotonic() + WAIT_SECONDS
            while job.poll() is None and len(handler.messages) < kill_at:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.001)
            if job.poll() is not None:
                break  # it finished before the point: nothing left to kill
            job.kill()  # SIGKILL
            job.wait()
            kills += 1
            leases_run_out()
        job = start_job(smtp.port, log)
        assert job.wait(timeout=WAIT_SECONDS) == 0, log.read_text()

    received = handler.message_ids()
    assert set(received) == expected, log.read_text()  # none lost: per certificate and stage
    repeats = sum(count - 1 for count in received.values())
    assert kills == KILLS
    assert repeats <= kills, received
    assert max(received.values()) <= 2
    assert Counter(ExpiryReminder.objects.values_list("status", flat=True)) == {
        Status.SENT: 2 * PER_STAGE
    }


class RefusingHandler(RecordingHandler):
    """Answers 550 to the recipients of ``refused``."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_r10_the_job_log_keeps_the_message_id_of_a_failed_mail_and_masks_the_address(tmp_path):
    refused = make_certificate(not_after=DUE_30, email="taro.yamada@example.co.jp")
    make_certificate(not_after=DUE_30, email="hanako@example.co.jp")
    handler = RefusingHandler({"taro.yamada@example.co.jp"})
    log = tmp_path / "job.log"
    with SmtpServer(handler) as smtp:
        job = start_job(smtp.port, log)
        assert job.wait(timeout=WAIT_SECONDS) == 0, log.read_text()
    output = log.read_text()
    failed_lines = [line for line in output.splitlines() if "failed" in line and "550" in line]
    assert failed_lines, output
    assert message_id(30, refused.serial) in failed_lines[0]
    assert "t***@example.co.jp" in failed_lines[0]
    assert "taro.yamada" not in output and "hanako" not in output
    assert len(handler.messages) == 1
