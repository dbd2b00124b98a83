"""R10: the reminders' ledger: a (certificate, stage) is claimed once, a claim is a lease, and
every later write is made only by the worker that holds the claim."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import claims, job
from tests.notifications.helpers import jst, make_certificate

pytestmark = pytest.mark.django_db

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status
EXPIRY = jst(2029, 11, 28, 13, 45)
NOW = selectors.daily_run_time(jst(2029, 10, 30).date())
LEASE = timedelta(minutes=15)


def claimed(token: uuid.UUID | None = None, **certificate_fields) -> ExpiryReminder:
    """The 30-day record of a new certificate, claimed at ``NOW`` with ``token``."""
    certificate = make_certificate(not_after=EXPIRY, **certificate_fields)
    [reminder] = claims.claim_new(
        [(certificate, Stage.DAYS_30)], token=token or uuid.uuid4(), now=NOW
    ).values()
    return reminder


def waiting_for_a_retry() -> ExpiryReminder:
    """A record handed back (``retrying``, due ``RELEASE_DELAY`` after ``NOW``)."""
    token = uuid.uuid4()
    reminder = claimed(token)
    claims.release([reminder], token=token, now=NOW)
    reminder.refresh_from_db()
    return reminder


def test_r10_a_claim_is_taken_once(mailoutbox):
    certificate = make_certificate(not_after=EXPIRY)
    first = claims.claim_new([(certificate, Stage.DAYS_30)], token=uuid.uuid4(), now=timezone.now())
    second = claims.claim_new(
        [(certificate, Stage.DAYS_30)], token=uuid.uuid4(), now=timezone.now()
    )
    assert list(first) == [certificate.pk]
    assert second == {}
    assert ExpiryReminder.objects.count() == 1


def test_r10_a_claim_in_flight_is_left_alone(mailoutbox):
    """Another worker is sending it right now: no second mail, and a wake-up after its lease."""
    certificate = make_certificate(not_after=EXPIRY)
    at = selectors.daily_run_time(jst(2029, 10, 30).date())
    with time_machine.travel(at, tick=False):
        claims.claim_new([(certificate, Stage.DAYS_30)], token=uuid.uuid4(), now=timezone.now())
        run = job.send_expiry_reminders(at=at)
    assert mailoutbox == []
    assert ExpiryReminder.objects.get().status == Status.SENDING
    assert run.next_attempt_at == at + timedelta(minutes=15)


def test_r10_a_claim_left_by_a_crashed_worker_is_sent_once_after_its_lease(mailoutbox):
    certificate = make_certificate(not_after=EXPIRY)
    at = selectors.daily_run_time(jst(2029, 10, 30).date())
    with time_machine.travel(at, tick=False):
        claims.claim_new([(certificate, Stage.DAYS_30)], token=uuid.uuid4(), now=timezone.now())
    with time_machine.travel(at + timedelta(minutes=16), tick=False):
        run = job.retry_expiry_reminders()
    assert run.counts[30].sent == 1
    reminder = ExpiryReminder.objects.get()
    assert (reminder.status, reminder.attempts) == (Status.SENT, 2)
    assert mailoutbox[0].extra_headers["Message-ID"] == reminder.message_id


def test_r10_a_new_claim_is_a_lease_with_the_mail_s_own_message_id():
    token = uuid.uuid4()
    reminder = claimed(token, email="tanto@example.co.jp")
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts, reminder.claim_token) == (Status.SENDING, 1, token)
    assert reminder.next_attempt_at == NOW + LEASE
    assert reminder.email == "tanto@example.co.jp"
    assert reminder.message_id == f"<reminder-30-{reminder.certificate.serial}@example.jp>"


def test_r10_a_record_due_for_a_retry_is_re_claimed_by_one_worker_only():
    reminder = waiting_for_a_retry()
    due = reminder.next_attempt_at
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=NOW, now=NOW) == 0
    winner = uuid.uuid4()
    assert claims.claim_for_retry([reminder.pk], token=winner, due_by=due, now=due) == 1
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=due, now=due) == 0
    reminder.refresh_from_db()
    assert (reminder.status, reminder.claim_token, reminder.attempts) == (
        Status.SENDING,
        winner,
        1,
    )
    assert reminder.next_attempt_at == due + LEASE


def test_r10_a_claim_whose_lease_ran_out_is_re_claimed_and_counts_an_attempt():
    reminder = claimed()
    over = NOW + LEASE
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=NOW, now=NOW) == 0
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=over, now=over) == 1
    reminder.refresh_from_db()
    assert reminder.attempts == 2


def test_r10_a_claim_abandoned_after_the_last_attempt_is_failed_not_re_claimed(settings):
    settings.KIHONET_REMINDER_MAX_ATTEMPTS = 1
    reminder = claimed()
    over = NOW + LEASE
    assert claims.fail_exhausted_claims(NOW) == 0  # still in its lease
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=over, now=over) == 0
    assert claims.fail_exhausted_claims(over) == 1
    reminder.refresh_from_db()
    assert (reminder.status, reminder.claim_token, reminder.next_attempt_at) == (
        Status.FAILED,
        None,
        None,
    )
    assert reminder.last_error == "送信処理が完了しないまま、試行回数の上限に達しました。"
    assert claims.fail_exhausted_claims(over) == 0


def test_r10_a_claim_handed_back_is_due_in_a_moment_without_counting_the_attempt():
    token = uuid.uuid4()
    reminder = claimed(token)
    claims.release([reminder], token=uuid.uuid4(), now=NOW)  # not the holder: nothing changes
    reminder.refresh_from_db()
    assert (reminder.status, reminder.claim_token) == (Status.SENDING, token)
    claims.release([reminder], token=token, now=NOW)
    reminder.refresh_from_db()
    assert (reminder.status, reminder.claim_token, reminder.attempts) == (Status.RETRYING, None, 0)
    assert reminder.next_attempt_at == NOW + claims.RELEASE_DELAY


def test_r10_a_cancelled_claim_is_never_sent_and_says_why():
    token = uuid.uuid4()
    reminder = claimed(token)
    claims.cancel([reminder], token=uuid.uuid4(), now=NOW)  # not the holder: nothing changes
    reminder.refresh_from_db()
    assert reminder.status == Status.SENDING
    claims.cancel([reminder], token=token, now=NOW)
    reminder.refresh_from_db()
    assert (reminder.status, reminder.claim_token, reminder.next_attempt_at) == (
        Status.CANCELLED,
        None,
        None,
    )
    assert "案内の対象外" in reminder.last_error
    assert claims.claim_for_retry([reminder.pk], token=uuid.uuid4(), due_by=NOW, now=NOW) == 0
