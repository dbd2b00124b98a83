"""R10: an SMTP failure is retried with backoff a bounded number of times, never blocking others."""

from datetime import timedelta

import pytest
import time_machine

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import claims, delivery, job
from tests.notifications.helpers import jst, make_certificate
from tests.notifications.smtp import SmtpControl

pytestmark = pytest.mark.django_db

Status = ExpiryReminder.Status
EXPIRY = jst(2029, 11, 28, 13, 45)
RUN_AT = selectors.daily_run_time(jst(2029, 10, 30).date())


@pytest.fixture
def flaky(smtp_server, settings) -> SmtpControl:
    """The real SMTP server (aiosmtpd), told per address to refuse, or made unreachable."""
    return SmtpControl(smtp_server, settings)


def run_at(moment, *, retry_only: bool = False) -> job.ReminderRun:
    with time_machine.travel(moment, tick=False):
        if retry_only:
            return job.retry_expiry_reminders()
        return job.send_expiry_reminders()


def test_r10_a_temporary_failure_is_retried_with_backoff_and_blocks_no_other_mail(
    flaky,
):
    make_certificate(not_after=EXPIRY, email="a@example.jp")
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    make_certificate(not_after=EXPIRY, email="c@example.jp")
    flaky.refusals["busy@example.jp"] = [451, 451]

    run = run_at(RUN_AT)
    assert (run.counts[30].sent, run.counts[30].retrying) == (2, 1)
    assert run.next_attempt_at == RUN_AT + timedelta(minutes=5)
    busy = ExpiryReminder.objects.get(email="busy@example.jp")
    assert (busy.status, busy.attempts) == (Status.RETRYING, 1)
    assert "451" in busy.last_error

    assert run_at(RUN_AT + timedelta(minutes=4), retry_only=True).counts[30].sent == 0
    run = run_at(RUN_AT + timedelta(minutes=5), retry_only=True)  # second attempt: 451 again
    assert run.counts[30].retrying == 1
    assert run.next_attempt_at == RUN_AT + timedelta(minutes=5 + 10)
    run = run_at(RUN_AT + timedelta(minutes=15), retry_only=True)
    assert run.counts[30].sent == 1
    assert run.next_attempt_at is None

    busy.refresh_from_db()
    assert (busy.status, busy.attempts, busy.last_error) == (Status.SENT, 3, "")
    assert sorted(m["To"] for m in flaky.messages) == [
        "a@example.jp",
        "busy@example.jp",
        "c@example.jp",
    ]
    assert flaky.attempts.count("busy@example.jp") == 3


def test_r10_a_permanent_failure_is_recorded_as_failed_at_once(flaky):
    make_certificate(not_after=EXPIRY, email="nobody@example.jp")
    flaky.refusals["nobody@example.jp"] = [550]
    run = run_at(RUN_AT)
    assert (run.counts[30].failed, run.next_attempt_at) == (1, None)
    assert ExpiryReminder.objects.get().status == Status.FAILED
    run_at(RUN_AT + timedelta(days=1))
    assert flaky.messages == []
    assert flaky.attempts == ["nobody@example.jp"]


def test_r10_retries_are_bounded_then_recorded_as_failed(flaky, settings):
    settings.KIHONET_REMINDER_MAX_ATTEMPTS = 3
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    flaky.refusals["busy@example.jp"] = [451] * 10
    moment = RUN_AT
    run = run_at(moment)
    while run.next_attempt_at is not None:
        moment = run.next_attempt_at
        run = run_at(moment, retry_only=True)
    reminder = ExpiryReminder.objects.get()
    assert (reminder.status, reminder.attempts) == (Status.FAILED, 3)
    assert moment == RUN_AT + timedelta(minutes=5 + 10)
    assert run.counts[30].failed == 1
    assert flaky.messages == []


def test_r10_an_unreachable_server_leaves_every_mail_for_a_retry(flaky):
    for n in range(3):
        make_certificate(not_after=EXPIRY, email=f"u{n}@example.jp")
    flaky.unreachable = True
    run = run_at(RUN_AT)
    assert run.counts[30].retrying == 3
    assert flaky.attempts == []  # no mail is tried once the connection cannot be opened
    flaky.unreachable = False
    run = run_at(RUN_AT + timedelta(minutes=5), retry_only=True)
    assert run.counts[30].sent == 3
    assert len(flaky.messages) == 3


def test_r10_a_30_day_retry_that_reaches_the_7_day_window_is_cancelled(flaky):
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    flaky.refusals["busy@example.jp"] = [451]
    run_at(RUN_AT)
    run = run_at(selectors.daily_run_time(jst(2029, 11, 22).date()))
    assert (run.counts[30].skipped, run.counts[7].sent) == (1, 1)
    assert dict(ExpiryReminder.objects.values_list("stage", "status")) == {
        30: Status.CANCELLED,
        7: Status.SENT,
    }
    assert [m["Message-ID"].split("-")[1] for m in flaky.messages] == ["7"]


def test_r10_a_worker_hands_back_what_it_cannot_send_within_its_lease(settings, mailoutbox):
    settings.KIHONET_REMINDER_CLAIM_LEASE_SECONDS = delivery.LEASE_SAFETY_SECONDS
    make_certificate(not_after=EXPIRY)
    run = run_at(RUN_AT)
    reminder = ExpiryReminder.objects.get()
    due = RUN_AT + claims.RELEASE_DELAY
    assert (reminder.status, reminder.attempts, reminder.next_attempt_at) == (
        Status.RETRYING,
        0,
        due,
    )
    assert run.next_attempt_at == due
    assert run_at(due, retry_only=True).counts[30].sent == 0  # handed back again, no loop
    assert mailoutbox == []
    del settings.KIHONET_REMINDER_CLAIM_LEASE_SECONDS
    assert run_at(due + claims.RELEASE_DELAY, retry_only=True).counts[30].sent == 1
    assert ExpiryReminder.objects.get().attempts == 1
