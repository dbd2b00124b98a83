"""Reads of the back office: whose data a staff account sees (R15), the one-screen overview of a
customer user, the dashboard and the search by whole or partial keys on indexed columns.

Every list, search, autocomplete, export and action of the admin goes through ``staff_scope``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, Model, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from issuance import roles, selectors
from issuance.models import (
    AuditEvent,
    AutoRenewal,
    Certificate,
    Customer,
    DeskContact,
    InputLock,
    KihonetUser,
    MismatchAlert,
    Notice,
    ReissueRecord,
    ServiceDesk,
    StaffProfile,
)
from issuance.querysets import CertificateQuerySet, _desk_customer_filter
from issuance.rules import formats
from issuance.rules import renewal as renewal_rules

# --- Who sees what ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffScope:
    """All customers (supervisor, superuser), one desk's customers (clerk), or none."""

    everything: bool = False
    desk: ServiceDesk | None = None

    @property
    def is_empty(self) -> bool:
        return not self.everything and self.desk is None

    def filter(self, queryset: QuerySet, customer_path: str) -> QuerySet:
        """``queryset`` narrowed to the customers in scope, reached by ``customer_path``
        (``""`` for Customer itself, ``"user__customer"`` for a certificate, …)."""
        if self.everything:
            return queryset
        if self.desk is None:
            return queryset.none()
        return queryset.filter(_desk_customer_filter(self.desk, customer_path))

    def input_locks(self, queryset: QuerySet[InputLock]) -> QuerySet[InputLock]:
        """Locks of the desk's customers' users; locks by address or of staff sign-in: supervisors."""
        if self.everything:
            return queryset
        if self.desk is None:
            return queryset.none()
        codes = Customer.objects.for_desk(self.desk).filter(kihonet_code=OuterRef("value"))
        customer_kinds = [InputLock.Kind.PERSON, InputLock.Kind.KIHONET_CODE]
        return queryset.filter(kind__in=customer_kinds).filter(Exists(codes))

    def mismatch_alerts(self, queryset: QuerySet[MismatchAlert]) -> QuerySet[MismatchAlert]:
        """Alerts on the desk's customers (by 企保ネットコード); every alert for supervisors."""
        if self.everything:
            return queryset
        if self.desk is None:
            return queryset.none()
        codes = Customer.objects.for_desk(self.desk).filter(kihonet_code=OuterRef("kihonet_code"))
        return queryset.filter(Exists(codes))


NO_SCOPE = StaffScope()
_SCOPE_ATTRIBUTE = "_kihonet_staff_scope"


def is_supervisor(user) -> bool:
    return user.is_superuser or user.groups.filter(name=roles.SUPERVISOR).exists()


def staff_scope(user) -> StaffScope:
    """The scope of a signed-in staff account, remembered on the user object for the request."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return NO_SCOPE
    cached = getattr(user, _SCOPE_ATTRIBUTE, None)
    if cached is not None:
        return cached
    if is_supervisor(user):
        scope = StaffScope(everything=True)
    else:
        profile = StaffProfile.objects.select_related("desk").filter(user=user).first()
        scope = StaffScope(desk=profile.desk) if profile and profile.desk else NO_SCOPE
    setattr(user, _SCOPE_ATTRIBUTE, scope)
    return scope


def desk_in_view(user, requested_desk_id: str | None) -> ServiceDesk | None:
    """The desk whose figures the dashboard shows: a clerk's own; a supervisor's choice."""
    scope = staff_scope(user)
    if not scope.everything:
        return scope.desk
    if requested_desk_id and requested_desk_id.isdigit():
        return ServiceDesk.objects.filter(pk=int(requested_desk_id)).first()
    return None


def users_in_scope(user) -> QuerySet[KihonetUser]:
    return staff_scope(user).filter(KihonetUser.objects.all(), "customer")


def check_staff_may(actor, permission: str, kihonet_user: KihonetUser | None = None) -> None:
    """The check every back-office service makes: the permission, and the customer in scope.

    A system job (``Actor.system``) may act; a customer actor never may.
    """
    staff = actor.staff
    if staff is None:
        if actor.type == AuditEvent.ActorType.SYSTEM:
            return
        raise PermissionDenied("staff only")
    if not staff.has_perm(permission):
        raise PermissionDenied(permission)
    if kihonet_user is not None and not users_in_scope(staff).filter(pk=kihonet_user.pk).exists():
        raise PermissionDenied("customer outside the desk")


# --- Search: whole and partial keys, as staff type them -------------------------------------

SERIAL_SEARCH_RE = re.compile(r"^[0-9A-Fa-f]{1,40}$")
ALPHANUMERIC_RE = re.compile(r"^[0-9A-Za-z]+$")
EMAIL_PART_RE = re.compile(r"^[0-9A-Za-z._%+\-]+$")
WHOLE_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
SEARCH_ID_LIMIT = 1000
# A part of a key is searched from 3 characters (one trigram: the GIN indexes serve it), a
# part of a company name from 2 (「デモ」); shorter terms match whole keys only.
MIN_PARTIAL = 3
MIN_PARTIAL_NAME = 2
_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@dataclass(frozen=True)
class SearchLookup:
    """One way a term can match: ``lookup`` (exact or icontains) on a key, for each value."""

    lookup: str
    values: tuple[str, ...]


def _exact_or_partial(value: str, length: int, *variants: str) -> SearchLookup | None:
    values = tuple(dict.fromkeys((value, *variants)))
    if len(value) == length:
        return SearchLookup("exact", values)
    if MIN_PARTIAL <= len(value) < length:
        return SearchLookup("icontains", (value,))
    return None


def classify_search_term(term: str) -> dict[str, SearchLookup]:
    """Which keys ``term`` can be part of, and how to look each up.

    企保ネットコード (8 digits), ユーザーID (7), 管理番号 (10 alphanumerics), e-mail, お客様名: the
    whole key exactly, or a part of it (a prefix is a part) from 3 characters, 2 for a name;
    serial: exactly. Full-width and half-width are the same (NFKC), so are upper and lower
    case; a name is also looked for in full-width, as the core system may have stored it.
    """
    text = formats.normalize_field(term)
    if not text:
        return {}
    kinds: dict[str, SearchLookup] = {}
    if "@" in text:
        email = formats.normalize_email(text)
        if WHOLE_EMAIL_RE.fullmatch(email):  # a whole address: its own index, exactly
            kinds["email"] = SearchLookup("exact", (email,))
        elif len(email) >= MIN_PARTIAL:
            kinds["email"] = SearchLookup("icontains", (email,))
        return kinds
    code = formats.normalize_code(text)
    if ALPHANUMERIC_RE.fullmatch(code):
        candidates = {
            "kihonet_code": _exact_or_partial(code, 8) if code.isdigit() else None,
            "user_id": _exact_or_partial(code, 7, code.upper()),
            "management_number": _exact_or_partial(code, 10, code.upper()),
        }
        kinds.update({kind: found for kind, found in candidates.items() if found})
        if SERIAL_SEARCH_RE.fullmatch(code):
            kinds["serial"] = SearchLookup("exact", (code.upper(),))
    if EMAIL_PART_RE.fullmatch(text) and len(text) >= MIN_PARTIAL:
        kinds["email"] = SearchLookup("icontains", (formats.normalize_email(text),))
    if not text.isdigit() and len(text) >= MIN_PARTIAL_NAME:
        kinds["name"] = SearchLookup(
            "icontains", tuple(dict.fromkeys((text, text.translate(_FULL_WIDTH))))
        )
    return kinds


def _part_filter(model: type[Model], path: str, value: str | None) -> dict[str, Any]:
    """A contains-search on ``path``. Through a relation (``user__user_id``) the related rows
    are found first on their own table, by its trigram index, and joined by their ids: searched
    across the join, PostgreSQL walked the whole certificate table (167 ms at 1,000,000)."""
    relation, _, field = path.rpartition("__")
    if not relation:
        return {f"{path}__icontains": value}
    related: type[Model] = model
    for name in relation.split("__"):
        related = related._meta.get_field(name).related_model  # type: ignore[assignment]
    ids = list(
        related._default_manager.filter(**{f"{field}__icontains": value})
        .order_by()
        .values_list("pk", flat=True)[:SEARCH_ID_LIMIT]
    )
    return {f"{relation}__in": ids}


def search(queryset: QuerySet, term: str, paths: dict[str, str]) -> QuerySet:
    """``queryset`` narrowed to the rows one of whose keys matches ``term`` (see
    ``classify_search_term``).

    ``paths`` maps a key kind to its lookup path from the model. The matching primary keys come
    from one UNION ALL query, each part served by a unique, plain or trigram (GIN) index, cut at
    ``SEARCH_ID_LIMIT``; the list is then applied to the (scoped) queryset. A term of no known
    form matches nothing.
    """
    manager = queryset.model._default_manager
    filters = [
        {f"{paths[kind]}__in": list(found.values)}
        if found.lookup == "exact"
        else _part_filter(queryset.model, paths[kind], value)
        for kind, found in classify_search_term(term).items()
        if kind in paths
        for value in (found.values if found.lookup == "icontains" else [None])
    ]
    parts = [manager.filter(**f).order_by().values_list("pk", flat=True) for f in filters]
    if not parts:
        return queryset.none()
    union = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    ids = list(dict.fromkeys(union[:SEARCH_ID_LIMIT]))
    return queryset.filter(pk__in=ids)


# --- One screen per customer user -------------------------------------------------------------


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
    desks: list[selectors.ContactRow]
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


def _reminder_model():
    """notifications.ExpiryReminder, looked up when used (notifications imports this module)."""
    return apps.get_model("notifications", "ExpiryReminder")


REMINDER_ROWS = 50


def reminders_for_user(user: KihonetUser) -> list[ReminderRow]:
    """The job's reminders and the desk's resends (kept in the audit trail), newest first."""
    model = _reminder_model()
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
    return [NoticeRow(n, selectors.is_replaced(n, notices)) for n in notices]


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
        desks=selectors.desks_for_customer(customer),
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
        open_notices=[
            n for n in notices if not n.is_used and not selectors.is_replaced(n, notices)
        ],
    )


# --- Dashboard --------------------------------------------------------------------------------

DASHBOARD_CACHE_SECONDS = 300
# This month and the next 36: a certificate issued today (valid three years) expires in the last.
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


def _desk_customers(desk: ServiceDesk) -> QuerySet[Customer]:
    """``Customer.objects.for_desk`` for aggregates: the desk's product lines are read first,
    so the planner sees a plain ``product line IN (…)`` it can estimate (the tiny contact
    tables are never auto-analyzed) and joins the whole table by hash, not row by row."""
    if desk.is_onboarding:
        return Customer.objects.filter(started_using=False)
    lines = list(DeskContact.objects.filter(desk=desk).values_list("product_line_id", flat=True))
    return Customer.objects.filter(product_lines__in=lines)


def _desk_certificates(desk: ServiceDesk | None) -> CertificateQuerySet:
    """All certificates, or those of the desk's customers."""
    if desk is None:
        return Certificate.objects.all()
    return Certificate.objects.filter(user__customer__in=_desk_customers(desk).values("pk"))


def _reminder_counts(desk: ServiceDesk | None, today_start: datetime) -> tuple[int, int]:
    reminders = _reminder_model().objects.filter(updated_at__gte=today_start)
    if desk is not None:
        reminders = reminders.filter(
            certificate__user__customer__in=_desk_customers(desk).values("pk")
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


def _compute_dashboard(desk: ServiceDesk | None, now: datetime) -> Dashboard:
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


def _dashboard_key(desk: ServiceDesk | None, now: datetime) -> str:
    return f"kihonet:dashboard:{desk.pk if desk else 'all'}:{timezone.localdate(now)}"


def dashboard(
    desk: ServiceDesk | None, now: datetime | None = None, *, cached: bool = True
) -> Dashboard:
    """The figures of ``desk`` (all desks when None), kept in the cache for five minutes and
    kept warm by the ``refresh_dashboards`` job, so that a clerk never waits for them."""
    now = now or timezone.now()
    if not cached:
        return _compute_dashboard(desk, now)
    found = cache.get(_dashboard_key(desk, now))
    if found is None:
        found = warm_dashboard(desk, now)
    return found


def warm_dashboard(desk: ServiceDesk | None, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    found = _compute_dashboard(desk, now)
    cache.set(_dashboard_key(desk, now), found, DASHBOARD_CACHE_SECONDS)
    return found


def warm_all_dashboards(now: datetime | None = None) -> int:
    """Every desk's figures and the all-desks figures, computed ahead of the staff."""
    desks: list[ServiceDesk | None] = [None, *ServiceDesk.objects.all()]
    for desk in desks:
        warm_dashboard(desk, now)
    return len(desks)


def scoped(model: type[Model], user, customer_path: str) -> QuerySet:
    """``model``'s rows in ``user``'s scope."""
    return staff_scope(user).filter(model._default_manager.all(), customer_path)
