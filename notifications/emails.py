"""The reminder mail itself: Japanese plain text and HTML from templates, a stable Message-ID."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import dateformat, timezone

from issuance.models import Certificate
from issuance.rules import renewal_info
from notifications.models import ExpiryReminder
from notifications.selectors import JST, Contacts

TEMPLATE_DIR = "notifications"
JST_FORMAT = "Y年n月j日 H:i"


def format_jst(moment: datetime) -> str:
    """``2029年11月28日 13:45``: the time in Japan, whatever the server's time zone."""
    return dateformat.format(moment.astimezone(JST), JST_FORMAT)


def sender_domain() -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id(stage: int, serial: str) -> str:
    """The same for every attempt at one mail, so that a receiver sees a repeat as one message."""
    return f"<reminder-{stage}-{serial}@{sender_domain()}>"


def renew_url() -> str:
    return f"{settings.KIHONET_BASE_URL}/renew/"


@dataclass(frozen=True)
class ReminderMail:
    """Everything the templates show."""

    stage: int
    customer_name: str
    user_id: str
    management_number: str
    expires_at: str
    renewed: bool
    renewal_revoked: bool
    new_expires_at: str
    renew_url: str
    contacts: Contacts
    resent: bool = False
    auto_renewal: bool = False


def reminder_mail(
    *,
    stage: int,
    certificate: Certificate,
    renewal_not_after: datetime | None,
    contacts: Contacts,
    renewal_revoked: bool = False,
    resent: bool = False,
    auto_renewal_checked_in_at: datetime | None = None,
    now: datetime | None = None,
) -> ReminderMail:
    """The job's mail of ``stage``; a desk's resend (``resent``) tells a renewed certificate's
    user that nothing is left to do, whatever the stage. ``renewal_revoked``: the renewal made
    from ``certificate`` was revoked since (a renewed certificate is never renewed again, so the
    mail asks for a reissue instead, R16). ``auto_renewal_checked_in_at``: the PC's last report
    that auto-renewal is on; when recent, the job's 30-day mail says the PC renews by itself
    instead of asking the customer to act."""
    renewed = renewal_not_after is not None and (resent or stage == ExpiryReminder.Stage.DAYS_7)
    auto_renewal = (
        not resent
        and stage == ExpiryReminder.Stage.DAYS_30
        and renewal_info.checked_in_recently(auto_renewal_checked_in_at, now or timezone.now())
    )
    return ReminderMail(
        stage=stage,
        customer_name=certificate.user.customer.name,
        user_id=certificate.user.user_id,
        management_number=certificate.user.management_number,
        expires_at=format_jst(certificate.not_after),
        renewed=renewed,
        renewal_revoked=renewed and renewal_revoked,
        new_expires_at=(
            format_jst(renewal_not_after) if renewed and renewal_not_after is not None else ""
        ),
        renew_url=renew_url(),
        contacts=contacts,
        resent=resent,
        auto_renewal=auto_renewal,
    )


def build_message(
    *, mail: ReminderMail, to: str, message_id: str, connection=None
) -> EmailMultiAlternatives:
    context = {"mail": mail}
    subject = render_to_string(f"{TEMPLATE_DIR}/expiry_reminder_subject.txt", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"{TEMPLATE_DIR}/expiry_reminder.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id, "Auto-Submitted": "auto-generated"},
        connection=connection,
    )
    message.attach_alternative(
        render_to_string(f"{TEMPLATE_DIR}/expiry_reminder.html", context), "text/html"
    )
    return message
