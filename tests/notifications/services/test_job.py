"""R10: the daily job, run in-process: which certificates are due for the 30-day and 7-day
mails, each sent exactly once, in batches of a fixed number of queries; a retry no longer due
is cancelled."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import job
from tests.notifications.helpers import jst, make_certificate, renew

pytestmark = pytest.mark.django_db

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status
EXPIRY = jst(2029, 11, 28, 13, 45)


def run_on(year: int, month: int, day: int, **kwargs) -> job.ReminderRun:
    return job.send_expiry_reminders(
        at=selectors.daily_run_time(jst(year, month, day).date()), **kwargs
    )


def stages_of(mailoutbox) -> list[str]:
    return [message.extra_headers["Message-ID"].split("-")[1] for message in mailoutbox]


# --- which mail is due ---------------------------------------------------------------------


def test_r10_thirty_day_mail_when_due_and_not_before(mailoutbox):
    certificate = make_certificate(not_after=EXPIRY)
    assert run_on(2029, 10, 29).counts[30].sent == 0  # 09:00 < 13:45 thirty days before
    run = run_on(2029, 10, 30)
    assert run.counts[30].sent == 1
    assert [m.to for m in mailoutbox] == [[certificate.email]]
    assert stages_of(mailoutbox) == ["30"]


def test_r10_each_stage_is_sent_once_and_a_rerun_sends_nothing(mailoutbox):
    make_certificate(not_after=EXPIRY)
    run_on(2029, 10, 30)
    assert run_on(2029, 10, 30).counts[30].sent == 0
    run_on(2029, 11, 5)
    run_on(2029, 11, 22)
    run_on(2029, 11, 22)
    run_on(2029, 11, 27)
    assert stages_of(mailoutbox) == ["30", "7"]
    assert set(ExpiryReminder.objects.values_list("stage", "status")) == {
        (30, Status.SENT),
        (7, Status.SENT),
    }


def test_r10_a_day_the_job_did_not_run_is_caught_up(mailoutbox):
    make_certificate(not_after=EXPIRY)
    run_on(2029, 11, 3)  # days after the 30-day point
    assert stages_of(mailoutbox) == ["30"]


def test_r10_inside_the_7_day_window_only_the_7_day_mail_never_a_stale_30_day_one(mailoutbox):
    make_certificate(not_after=EXPIRY)
    run = run_on(2029, 11, 25)
    assert stages_of(mailoutbox) == ["7"]
    assert (run.counts[30].sent, run.counts[7].sent) == (0, 1)
    assert not ExpiryReminder.objects.filter(stage=30).exists()


def test_r10_expired_and_revoked_certificates_get_no_mail(mailoutbox):
    make_certificate(not_after=EXPIRY - timedelta(days=10))
    make_certificate(not_after=EXPIRY, revoked=True)
    run_on(2029, 11, 25)
    assert mailoutbox == []


def test_r10_a_renewed_certificate_gets_no_30_day_mail_but_the_7_day_one(mailoutbox):
    old = make_certificate(not_after=EXPIRY)
    new = renew(old)
    run_on(2029, 11, 1)
    assert mailoutbox == []
    run_on(2029, 11, 22)
    assert stages_of(mailoutbox) == ["7"]
    body = mailoutbox[0].body
    assert "すでに更新のお手続きが完了しています" in body
    assert "お客様のお手続きは不要です" in body
    assert (
        f"新しいクライアント証明書の有効期限は {new.not_after.astimezone(selectors.JST):%Y年%-m月%-d日 %H:%M} です"
        in body
    )
    assert "更新の手順" not in body
    assert "更新は完了しています" in mailoutbox[0].subject
    assert ExpiryReminder.objects.get(stage=7).renewed is True


def test_r10_r12_a_revoked_renewal_still_counts_as_renewed_and_the_mail_asks_for_a_reissue(
    mailoutbox,
):
    """One definition of "renewed" for the mails (R10) and for renewal (R12): renewal refuses a
    certificate whose renewal was revoked, so no mail may ask its holder to renew it; the 7-day
    mail, still sent, says that a reissue is needed (R16) and whom to call (R15)."""
    from issuance.services.renewal import RenewalError, check_renewable

    old = make_certificate(not_after=EXPIRY)
    renew(old, revoked=True)
    run_on(2029, 11, 1)
    assert mailoutbox == []
    with time_machine.travel(jst(2029, 11, 1, 9), tick=False):
        with pytest.raises(RenewalError, match="すでに更新済み"):
            check_renewable(old, timezone.now())
    run_on(2029, 11, 22)
    assert stages_of(mailoutbox) == ["7"]
    body = mailoutbox[0].body
    assert "更新後のクライアント証明書は失効しています" in body
    assert "再発行手続きが必要です" in body
    assert "更新の手順" not in body
    assert "お客様のお手続きは不要です" not in body
    assert "再発行" in mailoutbox[0].subject
    html = mailoutbox[0].alternatives[0][0]
    assert "更新後のクライアント証明書は失効しています" in html


# --- retries ------------------------------------------------------------------------------


def test_r10_a_30_day_retry_that_reaches_the_7_day_window_is_cancelled(flaky):
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    flaky.refusals["busy@example.jp"] = [451]
    with time_machine.travel(selectors.daily_run_time(jst(2029, 10, 30).date()), tick=False):
        job.send_expiry_reminders()
    with time_machine.travel(selectors.daily_run_time(jst(2029, 11, 22).date()), tick=False):
        run = job.send_expiry_reminders()
    assert (run.counts[30].skipped, run.counts[7].sent) == (1, 1)
    assert dict(ExpiryReminder.objects.values_list("stage", "status")) == {
        30: Status.CANCELLED,
        7: Status.SENT,
    }
    assert [m["Message-ID"].split("-")[1] for m in flaky.messages] == ["7"]


# --- scale: a constant number of queries per batch, and one per mail sent --------------------


def queries_for(certificates: int, batch_size: int) -> int:
    """The queries of a run besides the one commit per accepted mail (its outcome is written
    at once, so that a crash repeats no mail already accepted: test_crash_exactly_once.py)."""
    for _ in range(certificates):
        make_certificate(not_after=EXPIRY)
    with CaptureQueriesContext(connection) as queries:
        run = run_on(2029, 11, 1, batch_size=batch_size)
    ExpiryReminder.objects.all().delete()
    return len(queries) - sum(count.sent for count in run.counts.values())


def test_r10_queries_do_not_grow_with_the_certificates_of_a_batch(mailoutbox):
    few = queries_for(3, batch_size=100)
    many = queries_for(30, batch_size=100)  # 33 certificates now, one batch
    assert few == many
    assert len(mailoutbox) == 3 + 33
    assert many <= 12


def test_r10_batches_cost_a_fixed_number_of_queries_each(mailoutbox):
    one_batch = queries_for(10, batch_size=10)
    three_batches = queries_for(20, batch_size=10)  # 30 certificates in three batches
    per_batch = (three_batches - one_batch) / 2
    assert per_batch <= 6
