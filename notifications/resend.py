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

from issuance import audit, desk_selectors, labels, roles
from issuance.errors import ServiceError
from issuance.models import Certificate
from issuance.rules import renewal as renewal_rules
from notifications import emails, selectors
from notifications.models import ExpiryReminder

logger = logging.getLogger(__name__)


class ResendError(ServiceError):
    status_code = "3520"
    message = _("更新のご案内を再送できませんでした。")


def _stage(certificate: Certificate, now) -> int:
    """The 7-day mail inside the last 7 days, else the 30-day one (also earlier than 30 days)."""
    if certificate.not_after <= now + ExpiryReminder.Stage.DAYS_7.lead_time:
        return ExpiryReminder.Stage.DAYS_7
    return ExpiryReminder.Stage.DAYS_30


def _renewal(certificate: Certificate) -> Certificate | None:
    return Certificate.objects.renewals_of(certificate).only("not_after", "revoked_at").first()


def _message_id(stage: int, serial: str) -> str:
    return f"<reminder-resend-{stage}-{serial}-{uuid.uuid4().hex[:12]}@{emails.sender_domain()}>"


@transaction.atomic
def resend_reminder(certificate: Certificate, actor: audit.Actor, *, reason: str = "") -> str:
    """Mails the guidance for ``certificate`` again; returns the Message-ID."""
    certificate = Certificate.objects.select_related("user__customer").get(pk=certificate.pk)
    desk_selectors.check_staff_may(actor, roles.RESEND, certificate.user)
    now = timezone.now()
    if certificate.is_revoked:
        raise ResendError(_("失効した証明書の更新のご案内は送れません。再発行をご案内ください。"))
    if certificate.not_after <= now:
        raise ResendError(_("有効期限を経過した証明書は更新できません。再発行をご案内ください。"))
    if not desk_selectors.may_resend_reminder(certificate, now):
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
    try:
        sent = message.send()
    except Exception as error:
        logger.warning("resend of %s failed: %r", certificate.serial, error)
        raise ResendError(
            _("メールを送信できませんでした。時間をおいて再度お試しください。")
        ) from error
    if sent != 1:
        raise ResendError()
    audit.record(
        actor,
        "reminder_resent",
        certificate,
        kihonet_user=certificate.user,
        reason=reason,
        detail={
            "serial": certificate.serial,
            "stage": int(stage),
            "email": certificate.email,
            "renewed": mail.renewed,
            "message_id": message_id,
        },
    )
    return message_id
