"""Staff see every reminder and its outcome in the admin, read-only; superusers edit the schedule."""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from notifications import selectors
from notifications.models import ExpiryReminder
from notifications.services import job
from tests.notifications.helpers import jst, make_certificate
from tests.notifications.smtp import SmtpControl

pytestmark = pytest.mark.django_db

EXPIRY = jst(2029, 11, 28, 13, 45)
CHANGELIST = "admin:notifications_expiryreminder_changelist"


def send_reminders(count: int, smtp: SmtpControl | None = None) -> None:
    """``count`` reminders, refused with 550 by the real SMTP server when ``smtp`` is given."""
    for _ in range(count):
        certificate = make_certificate(not_after=EXPIRY)
        if smtp is not None:
            smtp.refusals[certificate.email] = [550]
    job.send_expiry_reminders(at=selectors.daily_run_time(jst(2029, 10, 30).date()))


def test_r10_failed_reminders_are_listed_and_filtered_with_no_query_per_row(
    admin_client, django_assert_max_num_queries, flaky
):
    send_reminders(failed := 2, flaky)
    send_reminders(sent := 1)
    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "failed"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == failed
    content = response.content.decode()
    assert "送信失敗" in content and "550" in content
    with django_assert_max_num_queries(20) as few:
        admin_client.get(reverse(CHANGELIST))
    send_reminders(more := 15, flaky)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(reverse(CHANGELIST), {"stage__exact": "30"})
    assert response.context["cl"].result_count == failed + sent + more


def test_r10_reminders_are_read_only_and_never_deleted(admin_client, flaky):
    send_reminders(1, flaky)
    reminder = ExpiryReminder.objects.get()
    assert admin_client.get(reverse("admin:notifications_expiryreminder_add")).status_code == 403
    response = admin_client.get(
        reverse("admin:notifications_expiryreminder_change", args=[reminder.pk])
    )
    assert response.status_code == 200
    assert "_save" not in response.content.decode()
    response = admin_client.post(
        reverse("admin:notifications_expiryreminder_change", args=[reminder.pk]), {"status": "sent"}
    )
    assert response.status_code == 403
    assert (
        admin_client.get(
            reverse("admin:notifications_expiryreminder_delete", args=[reminder.pk])
        ).status_code
        == 403
    )
    reminder.refresh_from_db()
    assert reminder.status == ExpiryReminder.Status.FAILED


def test_r10_the_schedule_is_editable_by_superusers(admin_client):
    task = PeriodicTask.objects.get(name="send-expiry-reminders")
    response = admin_client.get(
        reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    )
    assert response.status_code == 200
    assert "_save" in response.content.decode()
