"""Writes of the reminder job: claim each (certificate, stage) once, mail it, record the outcome.

The claim protocol:

1. A due certificate gets its record by ``INSERT … ON CONFLICT DO NOTHING`` with a fresh claim
   token; only the rows that carry our token afterwards are ours to send.  The unique constraint
   on (certificate, stage) makes a second worker, a second beat, a retry or a re-run skip them.
2. A claim is a lease (``next_attempt_at``): a worker that crashed leaves ``sending`` rows whose
   lease runs out; any later run re-claims them with a conditional ``UPDATE`` (one winner).  A
   worker stops sending before its own lease ends, and hands the rest back.
3. Each mail the SMTP server accepted is recorded as sent at once, in its own commit, so a crash
   leaves at most the one mail in flight per worker to be sent again after the lease; it has a
   Message-ID derived from (stage, serial), so that repeat is the same message to the receiver.
4. A temporary SMTP failure (4xx, lost connection) waits ``retry_delay(attempts)`` and is tried
   again, up to ``max_attempts``; then, or at once on a permanent 5xx, it is recorded as failed.
   One mail's failure never stops the others.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.mail import get_connection
from django.db.models import F
from django.utils import timezone

from issuance.models import Certificate
from notifications import conf, emails, selectors
from notifications.models import ExpiryReminder

logger = logging.getLogger(__name__)

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status

ERROR_TEXT_LIMIT = 2000
# Stop sending this long before the claim's lease ends, so no one else can have re-claimed it.
LEASE_SAFETY_SECONDS = 30
# A claim handed back is due again after this, for the next wake-up (not the same pass).
RELEASE_DELAY = timedelta(seconds=1)


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

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "counts": {str(stage): vars(count) for stage, count in self.counts.items()},
        }


@dataclass
class _Outbound:
    """A claimed record and the certificate it mails about."""

    reminder: ExpiryReminder
    certificate: Certificate
    renewal_not_after: datetime | None


@dataclass
class _Outcomes:
    """What a batch did not send: recorded when the batch is done (sent mails at once)."""

    failed: list[tuple[_Outbound, BaseException]] = field(default_factory=list)
    released: list[_Outbound] = field(default_factory=list)


# --- The job ----------------------------------------------------------------------------------


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


# --- Claims -----------------------------------------------------------------------------------


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


# --- Passes -----------------------------------------------------------------------------------


def _send_due_batch(
    batch: list[Certificate], stage: Stage, run: ReminderRun, directory: selectors.DeskDirectory
) -> None:
    token = uuid.uuid4()
    claimed = claim_new(((c, stage) for c in batch), token=token, now=timezone.now())
    outbound = []
    for certificate in batch:
        reminder = claimed.get(certificate.pk)
        if reminder is None:
            run.add(stage, "skipped")  # another worker claimed it first
            continue
        outbound.append(_Outbound(reminder, certificate, certificate.renewal_not_after))
    _deliver(outbound, token, run, directory)


def _retry_pending(run: ReminderRun, directory: selectors.DeskDirectory, size: int) -> None:
    """The records due by the start of the pass; what fails or is handed back comes later."""
    start = timezone.now()
    failed = fail_exhausted_claims(start)
    if failed:
        logger.warning("expiry reminders: %d abandoned claim(s) recorded as failed", failed)
    while True:
        ids = selectors.reminder_ids_to_retry(
            now=start, max_attempts=conf.max_attempts(), limit=size
        )
        if not ids:
            return
        token = uuid.uuid4()
        claim_for_retry(ids, token=token, due_by=start, now=timezone.now())
        current: list[_Outbound] = []
        obsolete: list[_Outbound] = []
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
            item = _Outbound(reminder, certificate, certificate.renewal_not_after)
            (current if stage == reminder.stage else obsolete).append(item)
        _cancel(obsolete, token, run)
        _deliver(current, token, run, directory)


# --- Sending ----------------------------------------------------------------------------------


def _deliver(
    outbound: list[_Outbound],
    token: uuid.UUID,
    run: ReminderRun,
    directory: selectors.DeskDirectory,
) -> None:
    """Mails the claimed records over one SMTP connection.

    A mail the SMTP server accepted is recorded as sent at once, in its own commit: a crash
    (``kill -9``) can then leave at most the one mail in flight unrecorded, to be sent again
    with the same Message-ID after the lease. Failures and hand-backs, which sent nothing, are
    recorded together at the end."""
    if not outbound:
        return
    outcomes = _Outcomes()
    directory.load(item.certificate.user.customer for item in outbound)
    deadline = time.monotonic() + conf.claim_lease().total_seconds() - LEASE_SAFETY_SECONDS
    connection = get_connection()
    unreachable = _open(connection)
    try:
        for item in outbound:
            if unreachable is not None:
                outcomes.failed.append((item, unreachable))
            elif time.monotonic() > deadline:
                outcomes.released.append(item)
            else:
                error = _send_one(item, directory, connection)
                if error is None:
                    _record_sent(item, token, run)
                    continue
                outcomes.failed.append((item, error))
                if _connection_lost(error):
                    _close(connection)
                    unreachable = _open(connection)
    finally:
        _close(connection)
    _record(outcomes, token, run)


def _send_one(item: _Outbound, directory: selectors.DeskDirectory, connection) -> Exception | None:
    try:
        message = _message(item, directory, connection)
        if connection.send_messages([message]) != 1:
            raise smtplib.SMTPException("the mail backend did not send the message")
    except Exception as error:  # one mail's failure never stops the others
        logger.warning("expiry reminder %s failed: %r", item.reminder.message_id, error)
        return error
    return None


def _message(item: _Outbound, directory: selectors.DeskDirectory, connection):
    mail = emails.reminder_mail(
        stage=item.reminder.stage,
        certificate=item.certificate,
        renewal_not_after=item.renewal_not_after,
        renewal_revoked=item.certificate.renewal_revoked_at is not None,
        auto_renewal_checked_in_at=getattr(item.certificate, "auto_renewal_checked_in_at", None),
        contacts=directory.for_customer(item.certificate.user.customer),
    )
    item.reminder.renewed = mail.renewed
    return emails.build_message(
        mail=mail,
        to=item.reminder.email,
        message_id=item.reminder.message_id,
        connection=connection,
    )


def _connection_lost(error: BaseException) -> bool:
    """The connection is gone (a 4xx/5xx answer leaves it usable: smtplib resets the session)."""
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def _open(connection) -> Exception | None:
    """Opens the batch's connection; the error when the server cannot be reached."""
    try:
        connection.open()
    except Exception as error:
        logger.warning("expiry reminders: cannot connect to the SMTP server: %r", error)
        return error
    return None


def _close(connection) -> None:
    try:
        connection.close()
    except Exception as error:
        logger.warning("expiry reminders: SMTP close failed: %r", error)


def is_permanent(error: BaseException) -> bool:
    """A 5xx answer: retrying will not help (unknown mailbox, refused sender)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


# --- Recording --------------------------------------------------------------------------------


def _record(outcomes: _Outcomes, token: uuid.UUID, run: ReminderRun) -> None:
    now = timezone.now()
    _record_failed(outcomes.failed, token, now, run)
    _release(outcomes.released, token, now)


def _record_sent(item: _Outbound, token: uuid.UUID, run: ReminderRun) -> None:
    """One accepted mail, committed on its own (the job runs outside any transaction)."""
    now = timezone.now()
    reminder = item.reminder
    updated = ExpiryReminder.objects.filter(pk=reminder.pk, claim_token=token).update(
        status=Status.SENT,
        sent_at=now,
        renewed=reminder.renewed,
        claim_token=None,
        next_attempt_at=None,
        last_error="",
        updated_at=now,
    )
    if not updated:
        logger.error("expiry reminder %s was sent but had lost its claim", reminder.message_id)
    run.add(reminder.stage, "sent")


def _record_failed(
    failures: list[tuple[_Outbound, BaseException]],
    token: uuid.UUID,
    now: datetime,
    run: ReminderRun,
) -> None:
    if not failures:
        return
    ours = set(
        ExpiryReminder.objects.filter(
            pk__in=[item.reminder.pk for item, _ in failures], claim_token=token
        ).values_list("pk", flat=True)
    )
    changed = []
    for item, error in failures:
        reminder = item.reminder
        if reminder.pk not in ours:
            continue
        give_up = is_permanent(error) or reminder.attempts >= conf.max_attempts()
        reminder.status = Status.FAILED if give_up else Status.RETRYING
        reminder.next_attempt_at = None if give_up else now + conf.retry_delay(reminder.attempts)
        reminder.claim_token = None
        reminder.last_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT]
        reminder.updated_at = now
        changed.append(reminder)
        run.add(reminder.stage, "failed" if give_up else "retrying")
    ExpiryReminder.objects.bulk_update(
        changed, ["status", "next_attempt_at", "claim_token", "last_error", "updated_at"]
    )


def _release(items: list[_Outbound], token: uuid.UUID, now: datetime) -> None:
    """Hands back claims this worker had no time left to send: due in a moment, not counted."""
    if items:
        ExpiryReminder.objects.filter(
            pk__in=[item.reminder.pk for item in items], claim_token=token
        ).update(
            status=Status.RETRYING,
            claim_token=None,
            next_attempt_at=now + RELEASE_DELAY,
            attempts=F("attempts") - 1,
            updated_at=now,
        )


def _cancel(items: list[_Outbound], token: uuid.UUID, run: ReminderRun) -> None:
    """Retries that are no longer current (expired, revoked, renewed, 7-day window): not sent."""
    if not items:
        return
    now = timezone.now()
    ExpiryReminder.objects.filter(
        pk__in=[item.reminder.pk for item in items], claim_token=token
    ).update(
        status=Status.CANCELLED,
        claim_token=None,
        next_attempt_at=None,
        updated_at=now,
        last_error="送信前に案内の対象外となりました（期限切れ・失効・更新済みなど）。",
    )
    for item in items:
        run.add(item.reminder.stage, "skipped")
