"""R10, R08: one certificate from 40 days before its expiry to 2 days after, day by day."""

from datetime import date, timedelta

import pytest
import time_machine

from issuance.models import AuditEvent, Certificate
from issuance.services.expiry import record_expiries
from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import job
from tests.notifications.helpers import jst, make_certificate, renew

pytestmark = pytest.mark.django_db

EXPIRY = jst(2029, 11, 28, 13, 45)
DAYS_WITHOUT_A_RUN = {date(2029, 10, 30), date(2029, 10, 31), date(2029, 11, 22)}
RENEWED_ON = date(2029, 11, 10)


def days(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def test_r10_r08_a_certificate_gets_exactly_the_30_day_and_the_renewed_7_day_mail(mailoutbox):
    certificate = make_certificate(not_after=EXPIRY)
    renewal = None
    mails_by_day: dict[date, list[str]] = {}
    for day in days(EXPIRY.date() - timedelta(days=40), EXPIRY.date() + timedelta(days=2)):
        with time_machine.travel(jst(day.year, day.month, day.day, 0, 5), tick=False):
            record_expiries()
        if day not in DAYS_WITHOUT_A_RUN:
            before = len(mailoutbox)
            with time_machine.travel(selectors.daily_run_time(day), tick=False):
                job.send_expiry_reminders()
            for mail in mailoutbox[before:]:
                mails_by_day.setdefault(day, []).append(mail.extra_headers["Message-ID"])
        if day == RENEWED_ON:
            with time_machine.travel(jst(day.year, day.month, day.day, 14, 0), tick=False):
                renewal = renew(certificate)

    serial = certificate.serial
    assert mails_by_day == {
        date(2029, 11, 1): [f"<reminder-30-{serial}@example.jp>"],  # caught up after two days
        date(2029, 11, 23): [f"<reminder-7-{serial}@example.jp>"],  # caught up after one day
    }
    thirty, seven = mailoutbox
    assert "更新の手順" in thirty.body
    assert "すでに更新のお手続きが完了しています" in seven.body
    assert (
        f"新しいクライアント証明書の有効期限は {renewal.not_after.astimezone(selectors.JST):%Y年%-m月%-d日 %H:%M} です"
        in seven.body
    )
    assert set(ExpiryReminder.objects.values_list("certificate_id", "stage", "status")) == {
        (certificate.pk, 30, "sent"),
        (certificate.pk, 7, "sent"),
    }
    after = EXPIRY + timedelta(days=2)
    assert certificate.status_at(after) == Certificate.Status.EXPIRED  # R08: useless after expiry
    assert renewal.status_at(after) == Certificate.Status.VALID
    # The nightly bookkeeping, run every day, recorded the expiry once, the renewal's not yet.
    expired = AuditEvent.objects.filter(action="certificate_expired")
    assert list(expired.values_list("object_id", flat=True)) == [str(certificate.pk)]
    assert AuditEvent.objects.filter(action="certificates_expired").count() == 43
