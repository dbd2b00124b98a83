"""R10: the 30-day and 7-day reminder mails, each sent exactly once, run in-process."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import claims, job
from tests.notifications.helpers import jst, make_certificate, make_holder, renew

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


@pytest.mark.parametrize(
    ("days_before", "renewed", "expected"),
    [
        (31, False, None),
        (30, False, Stage.DAYS_30),
        (8, False, Stage.DAYS_30),
        (7, False, Stage.DAYS_7),
        (1, False, Stage.DAYS_7),
        (0, False, None),
        (-1, False, None),
        (30, True, None),
        (7, True, Stage.DAYS_7),
    ],
)
def test_r10_current_stage(days_before, renewed, expected):
    at = EXPIRY - timedelta(days=days_before)
    assert selectors.current_stage(not_after=EXPIRY, at=at, renewed=renewed) == expected


def test_r10_the_30_day_point_is_the_moment_30_days_before_expiry():
    """At 09:00 the certificate expiring at 13:45 thirty days later is not due yet."""
    assert (
        selectors.current_stage(
            not_after=EXPIRY, at=EXPIRY - timedelta(days=30, minutes=1), renewed=False
        )
        is None
    )


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


# --- the mail ------------------------------------------------------------------------------


def test_r10_r15_the_30_day_mail_in_japanese(mailoutbox):
    holder = make_holder(customer_name="株式会社日本テスト")
    certificate = make_certificate(holder, not_after=EXPIRY, email="tanto@example.co.jp")
    run_on(2029, 10, 30)
    [mail] = mailoutbox
    assert mail.to == ["tanto@example.co.jp"]  # the address given at acquisition, not the user's
    assert mail.from_email == "kihonet@example.jp"
    assert (
        mail.subject
        == "【企保ネット】クライアント証明書の更新のご案内（有効期限：2029年11月28日 13:45）"
    )
    assert mail.extra_headers["Message-ID"] == f"<reminder-30-{certificate.serial}@example.jp>"
    html, mimetype = mail.alternatives[0]
    assert mimetype == "text/html"
    for body in (mail.body, html):
        assert "株式会社日本テスト 御中" in body
        # R12: the user picks the certificate to renew by its ユーザーID and 管理番号
        assert (
            f"ユーザーID：{holder.user_id}（管理番号：{holder.management_number}）のご担当者様"
            in body
        )
        assert "2029年11月28日 13:45" in body
        assert "https://kihonet.example.jp/renew/" in body
        assert (
            "なお、クライアント証明書を更新するには、Windowsの管理者権限が必要な場合があります。"
            in body
        )
        assert "『更新』ボタンをクリックしてください。" in body
        assert "クライアント証明書の更新が完了しました" in body
        # R15: the desks of the customer's product line, with phone and hours
        assert "団体保険課" in body and "0120-338-688" in body
        assert "法人サービスセンター" in body and "0120-563-928" in body
        assert "受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）" in body
        assert "0120-150-012" not in body  # not the before-start desk
    assert "&lt;" not in mail.body and "&amp;" not in mail.body  # plain text is not escaped


def test_r10_the_7_day_mail_has_its_own_subject_and_message_id(mailoutbox):
    certificate = make_certificate(not_after=EXPIRY)
    run_on(2029, 11, 22)
    [mail] = mailoutbox
    assert "残り7日" in mail.subject
    assert mail.extra_headers["Message-ID"] == f"<reminder-7-{certificate.serial}@example.jp>"
    assert "https://kihonet.example.jp/renew/" in mail.body


def test_r10_the_html_mail_escapes_the_customer_name(mailoutbox):
    make_certificate(make_holder(customer_name="<script>株式会社</script>"), not_after=EXPIRY)
    run_on(2029, 10, 30)
    html = mailoutbox[0].alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<script>株式会社</script> 御中" in mailoutbox[0].body


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


# --- the claim -----------------------------------------------------------------------------


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
