"""The claimed reminders' mails over one SMTP connection, each outcome recorded (R10).

1. Each mail the SMTP server accepted is recorded as sent at once, in its own commit, so a crash
   leaves at most the one mail in flight per worker to be sent again after the lease; it has a
   Message-ID derived from (stage, serial), so that repeat is the same message to the receiver.
2. A temporary SMTP failure (4xx, lost connection) waits ``retry_delay(attempts)`` and is tried
   again, up to ``max_attempts``; then, or at once on a permanent 5xx, it is recorded as failed.
   One mail's failure never stops the others.
3. A worker stops sending before its own lease ends, and hands the rest back.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.core.mail import get_connection
from django.utils import timezone

from issuance.models import Certificate
from notifications import conf, emails, selectors
from notifications.models import ExpiryReminder
from notifications.services import claims

logger = logging.getLogger(__name__)

Status = ExpiryReminder.Status

ERROR_TEXT_LIMIT = 2000
# Stop sending this long before the claim's lease ends, so no one else can have re-claimed it.
LEASE_SAFETY_SECONDS = 30


@dataclass
class Outbound:
    """A claimed record and the certificate it mails about."""

    reminder: ExpiryReminder
    certificate: Certificate
    renewal_not_after: datetime | None


@dataclass
class _Outcomes:
    """What a batch did not send: recorded when the batch is done (sent mails at once)."""

    failed: list[tuple[Outbound, BaseException]] = field(default_factory=list)
    released: list[Outbound] = field(default_factory=list)


def deliver(
    outbound: list[Outbound], token: uuid.UUID, directory: selectors.DeskDirectory
) -> list[tuple[int, str]]:
    """Mails the records ``token`` claimed over one SMTP connection; returns each one's stage and
    outcome (``sent``, ``failed`` or ``retrying``), a claim handed back left out.

    A mail the SMTP server accepted is recorded as sent at once, in its own commit: a crash
    (``kill -9``) can then leave at most the one mail in flight unrecorded, to be sent again
    with the same Message-ID after the lease. Failures and hand-backs, which sent nothing, are
    recorded together at the end."""
    if not outbound:
        return []
    outcomes = _Outcomes()
    counted: list[tuple[int, str]] = []
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
                    _record_sent(item, token)
                    counted.append((item.reminder.stage, "sent"))
                    continue
                outcomes.failed.append((item, error))
                if _connection_lost(error):
                    _close(connection)
                    unreachable = _open(connection)
    finally:
        _close(connection)
    now = timezone.now()
    counted += _record_failed(outcomes.failed, token, now)
    claims.release([item.reminder for item in outcomes.released], token=token, now=now)
    return counted


def is_permanent(error: BaseException) -> bool:
    """A 5xx answer: retrying will not help (unknown mailbox, refused sender)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


# --- Sending ----------------------------------------------------------------------------------


def _send_one(item: Outbound, directory: selectors.DeskDirectory, connection) -> Exception | None:
    try:
        message = _message(item, directory, connection)
        if connection.send_messages([message]) != 1:
            raise smtplib.SMTPException("the mail backend did not send the message")
    except Exception as error:  # one mail's failure never stops the others
        logger.warning("expiry reminder %s failed: %r", item.reminder.message_id, error)
        return error
    return None


def _message(item: Outbound, directory: selectors.DeskDirectory, connection):
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


# --- Recording --------------------------------------------------------------------------------


def _record_sent(item: Outbound, token: uuid.UUID) -> None:
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


def _record_failed(
    failures: list[tuple[Outbound, BaseException]], token: uuid.UUID, now: datetime
) -> list[tuple[int, str]]:
    """Failed, or waiting for a retry after ``retry_delay``: the claims ``token`` still holds."""
    if not failures:
        return []
    ours = set(
        ExpiryReminder.objects.filter(
            pk__in=[item.reminder.pk for item, _ in failures], claim_token=token
        ).values_list("pk", flat=True)
    )
    changed = []
    counted = []
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
        counted.append((reminder.stage, "failed" if give_up else "retrying"))
    ExpiryReminder.objects.bulk_update(
        changed, ["status", "next_attempt_at", "claim_token", "last_error", "updated_at"]
    )
    return counted
