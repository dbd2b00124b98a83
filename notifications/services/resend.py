"""The desk's resend of the renewal guidance (R10) to the certificate's registered address.

Built with the reminder job's own mail (``notifications.emails``); a resend has a Message-ID of
its own, so the receiver sees a new message, and leaves the job's records untouched. Each resend
is written to the audit log with the staff member, address and reason."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance import audit, labels, roles
from issuance.errors import ResendError
from issuance.models import Certificate
from issuance.rules import renewal as renewal_rules
from issuance.scoping import check_staff_may
from issuance.selectors.users import may_resend_reminder
from notifications import emails, selectors
from notifications.models import ExpiryReminder

logger = logging.getLogger(__name__)


def _stage(certificate: Certificate, now) -> int:
    """The 7-day mail inside the last 7 days, else the 30-day one (also earlier than 30 days)."""
    if certificate.not_after <= now + ExpiryReminder.Stage.DAYS_7.lead_time:
        return ExpiryReminder.Stage.DAYS_7
    return ExpiryReminder.Stage.DAYS_30


def _renewal(certificate: Certificate) -> Certificate | None:
    return Certificate.objects.renewals_of(certificate).only("not_after", "revoked_at").first()


def _message_id(stage: int, serial: str) -> str:
    return f"<reminder-resend-{stage}-{serial}-{uuid.uuid4().hex[:12]}@{emails.sender_domain()}>"


def resend_reminder(certificate: Certificate, actor: audit.Actor, *, reason: str = "") -> str:
    """Mails the guidance for ``certificate`` again; returns the Message-ID.

    The reminders' claim-then-send order: the ``reminder_resend_started`` event is committed
    before the mail leaves (no transaction is open across the SMTP send), then
    ``reminder_resent`` or ``reminder_resend_failed`` records the outcome. A mail therefore
    never leaves without its audit row, even when the process dies after sending it."""
    certificate, message, detail = _claim(certificate, actor, reason)
    try:
        sent = message.send()
    except Exception as error:
        logger.warning("resend of %s failed: %r", detail["serial"], error)
        failed = detail | {"error": type(error).__name__}
        audit.record(
            actor, "reminder_resend_failed", certificate, **_about(certificate, reason, failed)
        )
        raise ResendError(
            _("メールを送信できませんでした。時間をおいて再度お試しください。")
        ) from error
    if sent != 1:
        audit.record(
            actor, "reminder_resend_failed", certificate, **_about(certificate, reason, detail)
        )
        raise ResendError()
    audit.record(actor, "reminder_resent", certificate, **_about(certificate, reason, detail))
    return detail["message_id"]


@transaction.atomic
def _claim(certificate: Certificate, actor: audit.Actor, reason: str):
    """Checks the resend and commits its ``reminder_resend_started`` event; returns the mail."""
    certificate = Certificate.objects.select_related("user__customer").get(pk=certificate.pk)
    check_staff_may(actor, roles.RESEND, certificate.user)
    now = timezone.now()
    if certificate.is_revoked:
        raise ResendError(_("失効した証明書の更新のご案内は送れません。再発行をご案内ください。"))
    if certificate.not_after <= now:
        raise ResendError(_("有効期限を経過した証明書は更新できません。再発行をご案内ください。"))
    if not may_resend_reminder(certificate, now):
        opens = labels.format_moment(renewal_rules.renewal_opens_at(certificate.not_after))
        raise ResendError(
            _("更新のご案内は更新期間（%(opens)s から有効期限まで）にお送りできます。")
            % {"opens": opens}
        )
    stage = _stage(certificate, now)
    renewal = _renewal(certificate)
    mail = emails.reminder_mail(
        stage=stage,
        certificate=certificate,
        renewal_not_after=renewal.not_after if renewal else None,
        renewal_revoked=renewal is not None and renewal.is_revoked,
        contacts=selectors.DeskDirectory().for_customer(certificate.user.customer),
        resent=True,
    )
    message_id = _message_id(stage, certificate.serial)
    message = emails.build_message(mail=mail, to=certificate.email, message_id=message_id)
    detail = {
        "serial": certificate.serial,
        "stage": int(stage),
        "email": certificate.email,
        "renewed": mail.renewed,
        "message_id": message_id,
    }
    audit.record(
        actor,
        "reminder_resend_started",
        certificate,
        kihonet_user=certificate.user,
        reason=reason,
        detail=detail,
    )
    return certificate, message, detail


def _about(certificate: Certificate, reason: str, detail: dict) -> dict:
    """The fields of the outcome's event (one INSERT: atomic without a transaction)."""
    return {"kihonet_user": certificate.user, "reason": reason, "detail": detail}
