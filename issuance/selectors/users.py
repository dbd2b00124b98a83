"""The one-screen overview of a customer user for the desk, and the preview of a reissue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from issuance.models import (
    AuditEvent,
    AutoRenewal,
    Certificate,
    Customer,
    InputLock,
    KihonetUser,
    Notice,
    ReissueRecord,
)
from issuance.rules import renewal as renewal_rules
from issuance.rules.reissue import is_replaced
from issuance.selectors.contacts import ContactRow, desks_for_customer


def may_resend_reminder(certificate: Certificate, now: datetime) -> bool:
    """The renewal guidance fits while the certificate can still be renewed: from the opening
    of the renewal window (R09, the 30-day mail) until the expiry, the 7-day stage included
    (R10, also when it was renewed already). Not for a revoked or expired one."""
    return not certificate.is_revoked and renewal_rules.is_in_renewal_window(certificate, now)


@dataclass
class CertificateRow:
    certificate: Certificate
    in_renewal_window: bool
    renewal_opens_at: datetime
    is_valid: bool
    status: Certificate.Status  # Certificate.status_at: valid, revoked or expired
    may_resend: bool = False
    auto_renewal: AutoRenewal | None = None  # the PC's last report


@dataclass(frozen=True)
class ReminderRow:
    """A renewal mail of the user: one of the job's (30/7 days) or a resend by the desk."""

    serial: str
    stage_label: str
    status: str
    status_label: str
    email: str
    at: datetime | None
    attempts: int | str
    error: str
    resent_by: str = ""


@dataclass
class NoticeRow:
    notice: Notice
    is_replaced: bool


@dataclass
class UserOverview:
    """Everything a desk clerk needs to answer 「ログインできない」 on one screen."""

    user: KihonetUser
    customer: Customer
    product_lines: list[str]
    desks: list[ContactRow]
    notices: list[NoticeRow]
    certificates: list[CertificateRow]
    reminders: list[ReminderRow]
    reissues: list[ReissueRecord]
    input_locks: list[InputLock]
    audit_events: list[AuditEvent]
    now: datetime

    @property
    def has_valid_certificate(self) -> bool:
        return any(row.is_valid for row in self.certificates)

    @property
    def active_locks(self) -> list[InputLock]:
        return [lock for lock in self.input_locks if lock.is_active(self.now)]


AUDIT_ROWS = 50


def reminder_model():
    """notifications.ExpiryReminder, looked up when used (notifications imports this module)."""
    return apps.get_model("notifications", "ExpiryReminder")


REMINDER_ROWS = 50


def reminders_for_user(user: KihonetUser) -> list[ReminderRow]:
    """The job's reminders and the desk's resends (kept in the audit trail), newest first."""
    model = reminder_model()
    stages = dict(model.Stage.choices)
    # A resend's outcome: the started event alone is a resend whose outcome is not known.
    outcome = {"reminder_resent": model.Status.SENT, "reminder_resend_failed": model.Status.FAILED}
    rows = [
        ReminderRow(
            serial=r.certificate.serial,
            stage_label=str(r.get_stage_display()),
            status=r.status,
            status_label=str(r.get_status_display()),
            email=r.email,
            at=r.sent_at or r.created_at,
            attempts=r.attempts,
            error=r.last_error,
        )
        for r in model.objects.filter(certificate__user=user)
        .select_related("certificate")
        .order_by("-created_at", "-pk")[:REMINDER_ROWS]
    ]
    resends = AuditEvent.objects.filter(kihonet_user=user, action__in=outcome).order_by(
        "-created_at", "-pk"
    )[:REMINDER_ROWS]
    rows += [
        ReminderRow(
            serial=event.detail.get("serial", ""),
            stage_label=f"{stages.get(event.detail.get('stage'), '')}（窓口から再送）",
            status=outcome[event.action],
            status_label=str(model.Status(outcome[event.action]).label),
            email=event.detail.get("email", ""),
            at=event.created_at,
            attempts="-",
            error="",
            resent_by=event.actor,
        )
        for event in resends
    ]
    rows.sort(key=lambda row: row.at or user.created_at, reverse=True)
    return rows[:REMINDER_ROWS]


def _notice_rows(user: KihonetUser) -> list[NoticeRow]:
    notices = list(Notice.objects.filter(user=user).order_by("branch_number"))
    return [NoticeRow(n, is_replaced(n, notices)) for n in notices]


def _certificate_rows(user: KihonetUser, now: datetime) -> list[CertificateRow]:
    certificates = (
        Certificate.objects.filter(user=user)
        .select_related("auto_renewal")
        .order_by("-not_after", "-pk")
    )
    return [
        CertificateRow(
            certificate=c,
            in_renewal_window=renewal_rules.is_in_renewal_window(c, now),
            renewal_opens_at=renewal_rules.renewal_opens_at(c.not_after),
            is_valid=c.is_valid_at(now),
            status=c.status_at(now),
            may_resend=may_resend_reminder(c, now),
            auto_renewal=getattr(c, "auto_renewal", None),
        )
        for c in certificates
    ]


def user_overview(user: KihonetUser, now: datetime | None = None) -> UserOverview:
    """The overview of one user, in a fixed number of queries."""
    now = now or timezone.now()
    customer = Customer.objects.prefetch_related("product_lines").get(pk=user.customer_id)
    return UserOverview(
        user=user,
        customer=customer,
        product_lines=[line.name for line in customer.product_lines.all()],
        desks=desks_for_customer(customer),
        notices=_notice_rows(user),
        certificates=_certificate_rows(user, now),
        reminders=reminders_for_user(user),
        reissues=list(
            ReissueRecord.objects.filter(user=user)
            .select_related("new_notice", "staff")
            .order_by("-created_at")
        ),
        input_locks=list(
            InputLock.objects.filter(value=customer.kihonet_code)
            .filter(
                Q(kind=InputLock.Kind.PERSON, user_id=user.user_id)
                | Q(kind=InputLock.Kind.KIHONET_CODE)
            )
            .select_related("lifted_by")
            .order_by("-locked_at")[:20]
        ),
        audit_events=list(
            AuditEvent.objects.filter(kihonet_user=user).order_by("-created_at", "-pk")[:AUDIT_ROWS]
        ),
        now=now,
    )


@dataclass(frozen=True)
class ReissuePreview:
    """What a reissue for ``reason`` will do, shown before the clerk confirms it (R16)."""

    branch_number: str
    revokes_now: bool
    certificates: list[Certificate]
    open_notices: list[Notice]


def reissue_preview(
    user: KihonetUser, reason: str, branch_number: str, now: datetime | None = None
) -> ReissuePreview:
    now = now or timezone.now()
    notices = list(Notice.objects.filter(user=user).order_by("branch_number"))
    return ReissuePreview(
        branch_number=branch_number,
        revokes_now=reason == ReissueRecord.Reason.PC_LOST,
        certificates=[
            c
            for c in Certificate.objects.filter(user=user, revoked_at__isnull=True).order_by(
                "-not_after"
            )
            if c.not_after > now
        ],
        open_notices=[n for n in notices if not n.is_used and not is_replaced(n, notices)],
    )
