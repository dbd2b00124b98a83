"""The Celery tasks, the command, the default schedule (R10) and the expiry job (R08)."""

from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from issuance.models import AuditEvent
from issuance.tasks import expire_certificates, refresh_crl
from kihonet import celery_app
from notifications import selectors, tasks
from notifications.models import ExpiryReminder
from tests.notifications.helpers import jst, make_certificate

pytestmark = pytest.mark.django_db

EXPIRY = jst(2029, 11, 28, 13, 45)


@pytest.fixture
def queued(monkeypatch):
    """The wake-up tasks queued (recorded here, not sent)."""
    recorded = []
    monkeypatch.setattr(
        tasks.retry_expiry_reminders, "apply_async", lambda **options: recorded.append(options)
    )
    return recorded


@contextmanager
def eager(value: bool):
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = value
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = before


@pytest.fixture
def not_eager(queued):
    """As with a broker: follow-up tasks are queued, not run in-process."""
    with eager(False):
        yield queued


def test_r10_the_task_runs_the_job_as_of_9_jst_on_the_given_day(mailoutbox, not_eager):
    make_certificate(not_after=EXPIRY)
    result = tasks.send_expiry_reminders.apply(kwargs={"today": "2029-10-30"}).get()
    assert result["at"] == "2029-10-30T09:00:00+09:00"
    assert result["counts"]["30"] == {"sent": 1, "skipped": 0, "failed": 0, "retrying": 0}
    assert len(mailoutbox) == 1
    assert not_eager == []  # nothing left to retry


def test_r10_a_failed_mail_queues_a_wake_up_for_its_retry(smtp_server, not_eager):
    smtp_server.handler.refusals["busy@example.jp"] = [451]  # the real server, once
    make_certificate(not_after=EXPIRY, email="busy@example.jp")
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        tasks.send_expiry_reminders.apply(kwargs={"today": "2029-10-30"}).get()
    assert not_eager == [{"kwargs": {"today": "2029-10-30"}, "countdown": 300.0}]
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        result = tasks.retry_expiry_reminders.apply(kwargs={"today": "2029-10-30"}).get()
    assert result["counts"]["30"]["sent"] == 1
    assert len(not_eager) == 1
    assert smtp_server.handler.recipients == ["busy@example.jp"] * 2


def test_r10_a_long_wait_is_split_into_short_wake_ups(not_eager):
    tasks.schedule_wakeup(timezone.now() + timedelta(hours=5))
    assert not_eager[0]["countdown"] == 30 * 60


def test_r10_in_process_no_wake_up_is_queued(queued):
    with eager(True):
        tasks.schedule_wakeup(timezone.now())
    assert queued == []


def test_r10_the_command_prints_what_it_sent_skipped_and_failed(mailoutbox, not_eager):
    make_certificate(not_after=EXPIRY)
    make_certificate(not_after=EXPIRY - timedelta(days=25))
    out = StringIO()
    call_command("send_expiry_reminders", "--today", "2029-10-30", stdout=out)
    assert out.getvalue().splitlines() == [
        "30日前の案内: 送信 1件, スキップ 0件, 失敗 0件, 再送待ち 0件",
        "7日前の案内: 送信 1件, スキップ 0件, 失敗 0件, 再送待ち 0件",
    ]
    out = StringIO()
    call_command("send_expiry_reminders", "--today", "2029-10-30", stdout=out)
    assert "送信 0件" in out.getvalue()
    assert len(mailoutbox) == 2


def test_r10_the_command_refuses_a_bad_date():
    with pytest.raises(CommandError, match="--today"):
        call_command("send_expiry_reminders", "--today", "2029-13-01")


def test_r10_the_default_schedule_is_in_the_database_in_japan_time():
    schedule = {
        task.name: (
            task.task,
            task.crontab.minute,
            task.crontab.hour,
            str(task.crontab.timezone),
            task.enabled,
        )
        for task in PeriodicTask.objects.select_related("crontab")
    }
    assert schedule == {
        "send-expiry-reminders": (
            "notifications.tasks.send_expiry_reminders",
            "0",
            "9",
            "Asia/Tokyo",
            True,
        ),
        "expire-certificates": ("issuance.tasks.expire_certificates", "5", "0", "Asia/Tokyo", True),
        "refresh-crl": ("issuance.tasks.refresh_crl", "0", "*", "Asia/Tokyo", True),
        "refresh-dashboards": ("issuance.tasks.refresh_dashboards", "*/4", "*", "Asia/Tokyo", True),
    }


def test_r10_every_scheduled_task_is_registered_with_celery():
    celery_app.loader.import_default_modules()
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert names <= set(celery_app.tasks)
    assert "notifications.tasks.retry_expiry_reminders" in celery_app.tasks


def test_r10_no_beat_schedule_in_settings_overrides_the_admin(settings):
    assert not getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"


def test_r08_the_expire_certificates_task_records_the_expiries_and_its_run():
    now = timezone.now()
    past = make_certificate(not_after=now - timedelta(minutes=1))
    at_now = make_certificate(not_after=now)
    make_certificate(not_after=now + timedelta(days=1))
    make_certificate(not_after=now - timedelta(days=1), revoked=True)
    with time_machine.travel(now, tick=False):
        assert expire_certificates.apply().get() == 2
    expired = AuditEvent.objects.filter(action="certificate_expired")
    assert set(expired.values_list("object_id", "kihonet_user")) == {
        (str(past.pk), past.user_id),
        (str(at_now.pk), at_now.user_id),
    }
    event = AuditEvent.objects.get(action="certificates_expired")
    assert (event.actor_type, event.actor, event.detail["count"]) == (
        "system",
        "expire_certificates",
        2,
    )
    assert ExpiryReminder.objects.count() == 0
    with time_machine.travel(now, tick=False):
        assert expire_certificates.apply().get() == 0
    assert expired.count() == 2
    assert selectors.current_stage(not_after=past.not_after, at=now, renewed=False) is None


def test_the_refresh_crl_task_publishes_a_new_crl_every_run(issuing_ca):
    from issuance.models import CrlPublication

    first = refresh_crl.apply().get()
    second = refresh_crl.apply().get()
    assert second > first
    assert CrlPublication.objects.filter(number=second).exists()
    assert AuditEvent.objects.filter(action="crl_published", actor="refresh_crl").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_crl_whose_audit_event_cannot_be_written_is_not_published(issuing_ca, monkeypatch):
    """The publication and its event are one transaction: no CRL without its audit row."""
    from issuance import audit
    from issuance.models import CrlPublication
    from issuance.services import crl

    def failing_record(*args, **kwargs):
        raise RuntimeError("the audit trail is unavailable")

    before = CrlPublication.objects.count()
    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError):
        crl.refresh_crl()
    assert CrlPublication.objects.count() == before
