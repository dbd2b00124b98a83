"""R10: the desk's resend of the renewal guidance, called as the desk's view calls it: the
``reminder_resend_started`` event before the mail leaves, its outcome after; the job's records
are left alone."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from issuance import audit, roles
from issuance.errors import ResendError
from issuance.models import AuditEvent
from notifications.models import ExpiryReminder
from notifications.services import resend
from tests.backoffice.helpers import desk, make_staff
from tests.notifications.helpers import make_certificate, renew

pytestmark = pytest.mark.django_db

REASON = "メールが届かないとのお電話"


@pytest.fixture
def clerk() -> audit.Actor:
    """A clerk of a desk of the holders' product line (団体信用生命保険)."""
    return audit.Actor.staff_user(make_staff(roles.CLERK, desk("団体保険課")), "192.0.2.7")


def expiring_in(days: int, **fields):
    return make_certificate(not_after=timezone.now() + timedelta(days=days), **fields)


def events() -> list[tuple[str, dict]]:
    return list(
        AuditEvent.objects.filter(action__startswith="reminder_res")
        .order_by("pk")
        .values_list("action", "detail")
    )


def test_r10_a_resend_mails_the_guidance_and_records_it_before_and_after(clerk, smtp_server):
    certificate = expiring_in(20, email="tanto@example.co.jp")
    message_id = resend.resend_reminder(certificate, clerk, reason=REASON)
    [message] = smtp_server.handler.messages
    # (a long Message-ID is folded onto a line of its own)
    assert (message["Message-ID"].strip(), message["To"]) == (message_id, "tanto@example.co.jp")
    assert message_id.startswith(f"<reminder-resend-30-{certificate.serial}-")
    assert "残り7日" not in message["Subject"]
    detail = {
        "serial": certificate.serial,
        "stage": 30,
        "email": "tanto@example.co.jp",
        "renewed": False,
        "message_id": message_id,
    }
    assert events() == [("reminder_resend_started", detail), ("reminder_resent", detail)]
    for event in AuditEvent.objects.filter(action__startswith="reminder_res"):
        assert (event.staff, event.ip_address, event.reason) == (clerk.staff, "192.0.2.7", REASON)
        assert event.kihonet_user == certificate.user
    assert not ExpiryReminder.objects.exists()  # the job will still send its own mails


def test_r10_each_resend_is_a_new_message_and_the_7_day_one_inside_the_last_7_days(
    clerk, smtp_server
):
    old = expiring_in(5)
    renew(old)
    first = resend.resend_reminder(old, clerk)
    second = resend.resend_reminder(old, clerk)
    assert first != second
    assert first.startswith(f"<reminder-resend-7-{old.serial}-")
    assert sorted(m["Message-ID"].strip() for m in smtp_server.handler.messages) == sorted(
        [first, second]
    )
    assert [detail["renewed"] for _, detail in events()] == [True] * 4
    body = smtp_server.handler.messages[0].get_body(("plain",)).get_content()
    assert "すでに更新のお手続きが完了しています" in body


def test_r10_a_resend_the_server_refuses_is_recorded_as_failed(clerk, smtp_server):
    certificate = expiring_in(20)
    smtp_server.handler.refusals[certificate.email] = [451]
    with pytest.raises(ResendError, match="メールを送信できませんでした"):
        resend.resend_reminder(certificate, clerk, reason=REASON)
    (started, detail), (failed, failed_detail) = events()
    assert (started, failed) == ("reminder_resend_started", "reminder_resend_failed")
    assert failed_detail == detail | {"error": "SMTPRecipientsRefused"}
    assert smtp_server.handler.messages == []


def test_r10_no_mail_leaves_without_its_started_event(clerk, smtp_server, monkeypatch):
    """The event is written before the mail is sent: when it cannot be, nothing is sent."""
    record = audit.record

    def refuse_the_start(actor, action, *args, **kwargs):
        if action == "reminder_resend_started":
            raise RuntimeError("the audit trail is unavailable")
        return record(actor, action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", refuse_the_start)
    with pytest.raises(RuntimeError):
        resend.resend_reminder(expiring_in(20), clerk)
    assert smtp_server.handler.recipients == []
    assert events() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"days": 20, "revoked": True}, "失効した証明書"),
        ({"days": -1}, "有効期限を経過した証明書"),
        ({"days": 100}, "更新期間"),  # before the renewal window opens (R09)
    ],
)
def test_r09_r10_no_guidance_for_a_revoked_expired_or_not_yet_renewable_certificate(
    clerk, smtp_server, fields, message
):
    certificate = expiring_in(fields.pop("days"), **fields)
    with pytest.raises(ResendError, match=message):
        resend.resend_reminder(certificate, clerk)
    assert smtp_server.handler.recipients == []
    assert events() == []


@pytest.mark.parametrize(
    "staff",
    [
        lambda: make_staff(None, desk("団体保険課")),  # no role: no permission to resend
        lambda: make_staff(roles.CLERK, desk("企業保険サービス課")),  # the customer is not theirs
    ],
)
def test_r10_only_staff_allowed_to_resend_for_the_customer_may(staff, smtp_server):
    certificate = expiring_in(20)
    with pytest.raises(PermissionDenied):
        resend.resend_reminder(certificate, audit.Actor.staff_user(staff()))
    assert smtp_server.handler.recipients == []
    assert events() == []
