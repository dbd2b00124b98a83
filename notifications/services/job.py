"""The daily reminder job (R10) and its wake-ups: the due certificates, claimed then mailed.

Each run first takes the retries and abandoned claims that are due, then, per stage, the due
certificates in batches: each batch is claimed (``claims``), and only what this run claimed is
mailed (``delivery``).  A retry whose certificate no longer gets that mail is cancelled.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from issuance.models import Certificate
from notifications import conf, selectors
from notifications.models import ExpiryReminder
from notifications.services import claims, delivery

logger = logging.getLogger(__name__)

Stage = ExpiryReminder.Stage


@dataclass
class StageCount:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retrying: int = 0


@dataclass
class ReminderRun:
    """What one run did, per stage; ``next_attempt_at``: when a retry or a lease is next due."""

    at: datetime
    counts: dict[int, StageCount] = field(
        default_factory=lambda: {stage.value: StageCount() for stage in Stage}
    )
    next_attempt_at: datetime | None = None

    def add(self, stage: int, outcome: str, number: int = 1) -> None:
        count = self.counts[int(stage)]
        setattr(count, outcome, getattr(count, outcome) + number)

    def add_all(self, outcomes: Iterable[tuple[int, str]]) -> None:
        for stage, outcome in outcomes:
            self.add(stage, outcome)

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "counts": {str(stage): vars(count) for stage, count in self.counts.items()},
        }


def send_expiry_reminders(
    *, at: datetime | None = None, batch_size: int | None = None
) -> ReminderRun:
    """The daily job: retries that are due, then every due certificate's mail (R10).

    ``at`` is the moment the job runs as (now by default); the claims' own times use the clock.
    """
    run = ReminderRun(at=at or timezone.now())
    directory = selectors.DeskDirectory()
    size = batch_size or conf.batch_size()
    _retry_pending(run, directory, size)
    for stage in (Stage.DAYS_7, Stage.DAYS_30):
        after: tuple[datetime, int] | None = None
        while batch := selectors.due_certificates(at=run.at, stage=stage, limit=size, after=after):
            after = (batch[-1].not_after, batch[-1].pk)
            _send_due_batch(batch, stage, run, directory)
    run.next_attempt_at = selectors.next_pending_at()
    return run


def retry_expiry_reminders(
    *, at: datetime | None = None, batch_size: int | None = None
) -> ReminderRun:
    """Only the retries and abandoned claims that are due: the job's wake-up between days."""
    run = ReminderRun(at=at or timezone.now())
    _retry_pending(run, selectors.DeskDirectory(), batch_size or conf.batch_size())
    run.next_attempt_at = selectors.next_pending_at()
    return run


def _send_due_batch(
    batch: list[Certificate], stage: Stage, run: ReminderRun, directory: selectors.DeskDirectory
) -> None:
    token = uuid.uuid4()
    claimed = claims.claim_new(((c, stage) for c in batch), token=token, now=timezone.now())
    outbound = []
    for certificate in batch:
        reminder = claimed.get(certificate.pk)
        if reminder is None:
            run.add(stage, "skipped")  # another worker claimed it first
            continue
        outbound.append(delivery.Outbound(reminder, certificate, certificate.renewal_not_after))
    run.add_all(delivery.deliver(outbound, token, directory))


def _retry_pending(run: ReminderRun, directory: selectors.DeskDirectory, size: int) -> None:
    """The records due by the start of the pass; what fails or is handed back comes later."""
    start = timezone.now()
    failed = claims.fail_exhausted_claims(start)
    if failed:
        logger.warning("expiry reminders: %d abandoned claim(s) recorded as failed", failed)
    while True:
        ids = selectors.reminder_ids_to_retry(
            now=start, max_attempts=conf.max_attempts(), limit=size
        )
        if not ids:
            return
        token = uuid.uuid4()
        claims.claim_for_retry(ids, token=token, due_by=start, now=timezone.now())
        current: list[delivery.Outbound] = []
        obsolete: list[ExpiryReminder] = []
        for reminder in selectors.claimed_reminders(ids=ids, token=token):
            certificate = reminder.certificate
            stage = (
                selectors.current_stage(
                    not_after=certificate.not_after,
                    at=run.at,
                    renewed=certificate.renewal_not_after is not None,
                )
                if not certificate.is_revoked
                else None
            )
            if stage == reminder.stage:
                current.append(
                    delivery.Outbound(reminder, certificate, certificate.renewal_not_after)
                )
            else:
                obsolete.append(reminder)
        claims.cancel(obsolete, token=token, now=timezone.now())
        for reminder in obsolete:
            run.add(reminder.stage, "skipped")
        run.add_all(delivery.deliver(current, token, directory))
