"""The back office's dashboard: a desk's (or every desk's) figures and the recent mismatch
alerts. The figures are kept in the cache by ``issuance.services.dashboards``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from issuance.models import Certificate, Customer, InputLock, MismatchAlert, ServiceDesk
from issuance.querysets import CertificateQuerySet
from issuance.scoping import StaffScope, desk_customers, staff_scope
from issuance.selectors.users import reminder_model

CHART_MONTHS = 37


@dataclass(frozen=True)
class MonthBar:
    month: date
    count: int


@dataclass(frozen=True)
class Dashboard:
    valid: int
    expiring_30: int
    expiring_7: int
    expired_this_month: int
    reminders_sent_today: int
    reminders_failed_today: int
    locked_notices: int
    months: list[MonthBar]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _aware(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _expiry_chart(certificates: CertificateQuerySet, now: datetime) -> list[MonthBar]:
    """Unrevoked certificates still to expire, per month, this month and the next 36."""
    start = _month_start(timezone.localdate(now))
    end = _add_months(start, CHART_MONTHS)
    counts = dict(
        certificates.not_revoked()
        .filter(not_after__gte=now, not_after__lt=_aware(end))
        .annotate(month=TruncMonth("not_after", tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("month", "n")
    )
    by_month = {
        timezone.localtime(m).date() if isinstance(m, datetime) else m: n for m, n in counts.items()
    }
    return [
        MonthBar(month, by_month.get(month, 0))
        for month in (_add_months(start, i) for i in range(CHART_MONTHS))
    ]


def _desk_certificates(desk: ServiceDesk | None) -> CertificateQuerySet:
    """All certificates, or those of the desk's customers."""
    if desk is None:
        return Certificate.objects.all()
    return Certificate.objects.filter(user__customer__in=desk_customers(desk).values("pk"))


def _reminder_counts(desk: ServiceDesk | None, today_start: datetime) -> tuple[int, int]:
    reminders = reminder_model().objects.filter(updated_at__gte=today_start)
    if desk is not None:
        reminders = reminders.filter(
            certificate__user__customer__in=desk_customers(desk).values("pk")
        )
    counts = reminders.aggregate(
        sent=Count("pk", filter=Q(status="sent", sent_at__gte=today_start)),
        failed=Count("pk", filter=Q(status="failed")),
    )
    return counts["sent"], counts["failed"]


def _certificate_counts(
    certificates: QuerySet[Certificate], now: datetime, month_start: datetime
) -> dict[str, int]:
    """Every figure in one pass over the certificates still of interest."""
    unrevoked = Q(revoked_at__isnull=True)
    return certificates.filter(unrevoked, not_after__gte=month_start).aggregate(
        valid=Count("pk", filter=Q(not_before__lte=now, not_after__gt=now)),
        expiring_30=Count(
            "pk", filter=Q(not_after__gte=now, not_after__lt=now + timedelta(days=30))
        ),
        expiring_7=Count("pk", filter=Q(not_after__gte=now, not_after__lt=now + timedelta(days=7))),
        expired_this_month=Count("pk", filter=Q(not_after__lt=now)),
    )


def dashboard(desk: ServiceDesk | None, now: datetime | None = None) -> Dashboard:
    """The figures of ``desk`` (all desks when None), computed afresh."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    certificates = _desk_certificates(desk)
    counts = _certificate_counts(certificates, now, _aware(_month_start(today)))
    sent, failed = _reminder_counts(desk, _aware(today))
    scope = StaffScope(desk=desk) if desk else StaffScope(everything=True)
    locks = scope.input_locks(
        InputLock.objects.filter(lifted_at__isnull=True, locked_until__gt=now).exclude(
            kind=InputLock.Kind.STAFF_LOGIN  # customers' locks only
        )
    )
    return Dashboard(
        **counts,
        reminders_sent_today=sent,
        reminders_failed_today=failed,
        locked_notices=locks.count(),
        months=_expiry_chart(certificates, now),
    )


@dataclass(frozen=True)
class AlertRow:
    alert: MismatchAlert
    customer: Customer | None


MISMATCH_ALERT_HOURS = 24


def recent_mismatch_alerts(user, desk: ServiceDesk | None, now: datetime | None = None) -> list:
    """The companies whose many mismatches alerted the desk in the last 24 hours (not cached:
    the desk must see an attack at once), each with its customer when there is one."""
    now = now or timezone.now()
    scope = staff_scope(user)
    if desk is not None:
        scope = StaffScope(desk=desk)
    alerts = list(
        scope.mismatch_alerts(
            MismatchAlert.objects.filter(raised_at__gt=now - timedelta(hours=MISMATCH_ALERT_HOURS))
        ).order_by("-raised_at")[:20]
    )
    customers = Customer.objects.in_bulk(
        {alert.kihonet_code for alert in alerts}, field_name="kihonet_code"
    )
    return [AlertRow(alert, customers.get(alert.kihonet_code)) for alert in alerts]
