"""Celery tasks of the reminder job: thin wrappers around ``notifications.services.job``."""

from __future__ import annotations

import logging
from datetime import date, datetime

from celery import current_app, shared_task
from django.utils import timezone

from notifications import conf, selectors
from notifications.services import job

logger = logging.getLogger(__name__)


def run_time(today: str | None) -> datetime | None:
    """``today`` (YYYY-MM-DD) means 09:00 Japan time that day; none means now."""
    return selectors.daily_run_time(date.fromisoformat(today)) if today else None


@shared_task(name="notifications.tasks.send_expiry_reminders")
def send_expiry_reminders(today: str | None = None) -> dict:
    """Daily at 09:00 JST: every due 30-day and 7-day mail, once (R10)."""
    run = job.send_expiry_reminders(at=run_time(today))
    schedule_wakeup(run.next_attempt_at, today)
    return run.as_dict()


@shared_task(name="notifications.tasks.retry_expiry_reminders")
def retry_expiry_reminders(today: str | None = None) -> dict:
    """Between daily runs: the retries (with backoff) and abandoned claims that are due."""
    run = job.retry_expiry_reminders(at=run_time(today))
    schedule_wakeup(run.next_attempt_at, today)
    return run.as_dict()


def schedule_wakeup(next_attempt_at: datetime | None, today: str | None = None) -> None:
    """Queues ``retry_expiry_reminders`` for when the next retry is due.

    In-process (no broker) the next daily run does the retries instead: an eager task would run
    at once, without the backoff.  The countdown is capped below Redis' visibility timeout, so a
    long wait is several short wake-ups rather than one message Redis may hand out twice.
    """
    if next_attempt_at is None:
        return
    if current_app.conf.task_always_eager:
        logger.info(
            "expiry reminders: retries are due from %s; the next run sends them", next_attempt_at
        )
        return
    wait = (next_attempt_at - timezone.now()).total_seconds()
    countdown = min(max(wait, 1.0), conf.wakeup_max_seconds())
    retry_expiry_reminders.apply_async(kwargs={"today": today}, countdown=countdown)
