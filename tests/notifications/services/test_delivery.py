"""R10: the claimed mails over one SMTP connection: each accepted one recorded as sent at once, a
temporary failure retried with backoff a bounded number of times, never blocking the others."""

import smtplib
import uuid
from datetime import timedelta

import pytest
import time_machine

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import claims, delivery, job
from tests.notifications.helpers import jst, make_certificate, make_holder

pytestmark = pytest.mark.django_db

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status
EXPIRY = jst(2029, 11, 28, 13, 45)
RUN_AT = selectors.daily_run_time(jst(2029, 10, 30).date())


def run_at(moment, *, retry_only: bool = False) -> job.ReminderRun:
    with time_machine.travel(moment, tick=False):
        if retry_only:
            return job.retry_expiry_reminders()
        return job.send_expiry_reminders()


# --- one batch, directly -------------------------------------------------------------------


def claimed_batch(token: uuid.UUID) -> list[delivery.Outbound]:
    """The due 30-day certificates at ``RUN_AT``, claimed with ``token``, as the job hands them."""
    batch = selectors.due_certificates(at=RUN_AT, stage=Stage.DAYS_30, limit=100)
    claimed = claims.claim_new([(c, Stage.DAYS_30) for c in batch], token=token, now=RUN_AT)
    return [delivery.Outbound(claimed[c.pk], c, c.renewal_not_after) for c in batch]


def test_r10_a_batch_is_mailed_and_each_outcome_recorded_and_returned(flaky):
    sent = make_certificate(not_after=EXPIRY, email="ok@example.jp")
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    make_certificate(not_after=EXPIRY, email="nobody@example.jp")
    flaky.refusals["busy@example.jp"] = [451]
    flaky.refusals["nobody@example.jp"] = [550]
    token = uuid.uuid4()
    with time_machine.travel(RUN_AT, tick=False):
        outcomes = delivery.deliver(claimed_batch(token), token, selectors.DeskDirectory())
    assert outcomes == [(30, "sent"), (30, "retrying"), (30, "failed")]
    records = {r.email: r for r in ExpiryReminder.objects.all()}
    ok, busy, nobody = (records[f"{n}@example.jp"] for n in ("ok", "busy", "nobody"))
    assert (ok.status, ok.sent_at, ok.claim_token, ok.last_error) == (Status.SENT, RUN_AT, None, "")
    assert (busy.status, busy.next_attempt_at) == (Status.RETRYING, RUN_AT + timedelta(minutes=5))
    assert (nobody.status, nobody.next_attempt_at) == (Status.FAILED, None)
    assert "451" in busy.last_error and "550" in nobody.last_error
    assert busy.claim_token is None and nobody.claim_token is None
    [message] = flaky.messages
    assert message["Message-ID"] == f"<reminder-30-{sent.serial}@example.jp>" == ok.message_id
    assert flaky.attempts == ["ok@example.jp", "busy@example.jp", "nobody@example.jp"]


def test_r10_a_worker_that_lost_its_claims_overwrites_no_record(flaky, caplog):
    """Another worker holds the claims now: what this one sent or failed is not recorded."""
    make_certificate(not_after=EXPIRY, email="ok@example.jp")
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    flaky.refusals["busy@example.jp"] = [451]
    holder = uuid.uuid4()
    outbound = claimed_batch(holder)
    outcomes = delivery.deliver(outbound, uuid.uuid4(), selectors.DeskDirectory())
    assert outcomes == [(30, "sent")]  # the mail left; its failed neighbour is not counted
    assert set(ExpiryReminder.objects.values_list("status", "claim_token", "attempts")) == {
        (Status.SENDING, holder, 1)
    }
    assert "was sent but had lost its claim" in caplog.text


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.jp": (550, b"no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@example.jp": (451, b"try later")}), False),
        (
            smtplib.SMTPRecipientsRefused(
                {"a@example.jp": (550, b"no such user"), "b@example.jp": (451, b"later")}
            ),
            False,
        ),
        (smtplib.SMTPRecipientsRefused({}), False),
        (smtplib.SMTPSenderRefused(553, b"sender refused", "kihonet@example.jp"), True),
        (smtplib.SMTPDataError(554, b"rejected"), True),
        (smtplib.SMTPDataError(451, b"local error"), False),
        (smtplib.SMTPServerDisconnected("lost"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (smtplib.SMTPException("the mail backend did not send the message"), False),
    ],
)
def test_r10_only_a_5xx_answer_is_a_permanent_failure(error, permanent):
    assert delivery.is_permanent(error) is permanent


# --- the mail ------------------------------------------------------------------------------


def test_r10_r15_the_30_day_mail_in_japanese(mailoutbox):
    holder = make_holder(customer_name="株式会社日本テスト")
    certificate = make_certificate(holder, not_after=EXPIRY, email="tanto@example.co.jp")
    run_at(RUN_AT)
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
    run_at(selectors.daily_run_time(jst(2029, 11, 22).date()))
    [mail] = mailoutbox
    assert "残り7日" in mail.subject
    assert mail.extra_headers["Message-ID"] == f"<reminder-7-{certificate.serial}@example.jp>"
    assert "https://kihonet.example.jp/renew/" in mail.body


def test_r10_the_html_mail_escapes_the_customer_name(mailoutbox):
    make_certificate(make_holder(customer_name="<script>株式会社</script>"), not_after=EXPIRY)
    run_at(RUN_AT)
    html = mailoutbox[0].alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<script>株式会社</script> 御中" in mailoutbox[0].body


# --- failures and retries, through the job -------------------------------------------------


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
