"""The reminders' ledger: each (certificate, stage) is claimed by one worker, once (R10).

1. A due certificate gets its record by ``INSERT … ON CONFLICT DO NOTHING`` with a fresh claim
   token; only the rows that carry our token afterwards are ours to send.  The unique constraint
   on (certificate, stage) makes a second worker, a second beat, a retry or a re-run skip them.
2. A claim is a lease (``next_attempt_at``): a worker that crashed leaves ``sending`` rows whose
   lease runs out; any later run re-claims them with a conditional ``UPDATE`` (one winner).  A
   worker that has no time left hands its claims back.

Every write here is conditional on the claim token, so a worker that lost its claim changes
nothing; the outcome of a mail that was sent is recorded by ``notifications.services.delivery``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import F

from issuance.models import Certificate
from notifications import conf, emails
from notifications.models import ExpiryReminder

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status

# A claim handed back is due again after this, for the next wake-up (not the same pass).
RELEASE_DELAY = timedelta(seconds=1)


def claim_new(
    certificates: Iterable[tuple[Certificate, Stage]], *, token: uuid.UUID, now: datetime
) -> dict[int, ExpiryReminder]:
    """Inserts a ``sending`` record per (certificate, stage) unless one exists; returns ours."""
    rows = [
        ExpiryReminder(
            certificate=certificate,
            stage=stage,
            status=Status.SENDING,
            email=certificate.email,
            message_id=emails.message_id(stage, certificate.serial),
            attempts=1,
            claim_token=token,
            next_attempt_at=now + conf.claim_lease(),
            created_at=now,
            updated_at=now,
        )
        for certificate, stage in certificates
    ]
    ExpiryReminder.objects.bulk_create(rows, ignore_conflicts=True)
    ours = ExpiryReminder.objects.filter(
        certificate_id__in=[row.certificate_id for row in rows], claim_token=token
    )
    return {reminder.certificate_id: reminder for reminder in ours}


def claim_for_retry(ids: list[int], *, token: uuid.UUID, due_by: datetime, now: datetime) -> int:
    """Re-claims records waiting for a retry or left by a crashed worker; one worker wins each."""
    return ExpiryReminder.objects.filter(
        pk__in=ids,
        status__in=ExpiryReminder.PENDING,
        next_attempt_at__lte=due_by,
        attempts__lt=conf.max_attempts(),
    ).update(
        status=Status.SENDING,
        claim_token=token,
        attempts=F("attempts") + 1,
        next_attempt_at=now + conf.claim_lease(),
        updated_at=now,
    )


def fail_exhausted_claims(now: datetime) -> int:
    """Claims abandoned after the last allowed attempt: failed, not sent once more."""
    return ExpiryReminder.objects.filter(
        status__in=ExpiryReminder.PENDING,
        next_attempt_at__lte=now,
        attempts__gte=conf.max_attempts(),
    ).update(
        status=Status.FAILED,
        claim_token=None,
        next_attempt_at=None,
        updated_at=now,
        last_error="送信処理が完了しないまま、試行回数の上限に達しました。",
    )


def release(reminders: list[ExpiryReminder], *, token: uuid.UUID, now: datetime) -> None:
    """Hands back claims a worker had no time left to send: due in a moment, the attempt not
    counted."""
    if reminders:
        ExpiryReminder.objects.filter(
            pk__in=[reminder.pk for reminder in reminders], claim_token=token
        ).update(
            status=Status.RETRYING,
            claim_token=None,
            next_attempt_at=now + RELEASE_DELAY,
            attempts=F("attempts") - 1,
            updated_at=now,
        )


def cancel(reminders: list[ExpiryReminder], *, token: uuid.UUID, now: datetime) -> None:
    """Retries that are no longer current (expired, revoked, renewed, 7-day window): not sent."""
    if reminders:
        ExpiryReminder.objects.filter(
            pk__in=[reminder.pk for reminder in reminders], claim_token=token
        ).update(
            status=Status.CANCELLED,
            claim_token=None,
            next_attempt_at=None,
            updated_at=now,
            last_error="送信前に案内の対象外となりました（期限切れ・失効・更新済みなど）。",
        )
