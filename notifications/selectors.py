"""Reads of the reminder job: which mail is due, what is waiting for a retry, whom to call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, Min, OuterRef, Q, QuerySet

from issuance.models import Certificate, Customer, ServiceDesk
from issuance.selectors.contacts import ContactRow, desks_for_customer
from notifications.models import ExpiryReminder

JST = ZoneInfo("Asia/Tokyo")
DAILY_RUN_TIME = time(9, 0)

Stage = ExpiryReminder.Stage


def daily_run_time(day: date) -> datetime:
    """The moment of the daily run on ``day``: 09:00 Japan time."""
    return datetime.combine(day, DAILY_RUN_TIME, tzinfo=JST)


def current_stage(*, not_after: datetime, at: datetime, renewed: bool) -> Stage | None:
    """The mail a certificate is due at ``at`` (R10), whether or not it was sent.

    From the 7-day point to the expiry the 7-day mail, renewed or not; from the 30-day point to the
    7-day point the 30-day mail, unless already renewed; a 30-day mail is never sent late inside
    the 7-day window.
    """
    if at >= not_after:
        return None
    if at >= not_after - Stage.DAYS_7.lead_time:
        return Stage.DAYS_7
    if at >= not_after - Stage.DAYS_30.lead_time and not renewed:
        return Stage.DAYS_30
    return None


def _reminder_exists(stage: Stage) -> Exists:
    return Exists(ExpiryReminder.objects.filter(certificate=OuterRef("pk"), stage=stage))


MAIL_FIELDS = (
    "pk",
    "serial",
    "email",
    "not_after",
    "revoked_at",
    "user",
    "user__user_id",
    "user__management_number",
    "user__customer",
    "user__customer__name",
    "user__customer__started_using",
)


def _with_mail_data(certificates: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """What a mail needs (not the PEM), in one query however many certificates there are."""
    return (
        certificates.select_related("user__customer")
        .only(*MAIL_FIELDS)
        .annotate(**Certificate.objects.renewal_columns())
        .annotate(**Certificate.objects.auto_renewal_columns())
    )


def due_certificates_query(*, at: datetime, stage: Stage) -> QuerySet[Certificate]:
    """Unrevoked certificates inside ``stage``'s window at ``at`` that have no record of it yet.

    The 7-day window: from 7 days before the expiry to the expiry, renewed or not.  The 30-day
    window: from 30 to 7 days before the expiry, not renewed (see ``current_stage``).  Reads only
    those days of expiries through the partial index on ``not_after`` of the unrevoked
    certificates; "already claimed?" is an anti-join on the record's unique index.
    """
    start = at + (Stage.DAYS_7.lead_time if stage == Stage.DAYS_30 else timedelta(0))
    query = Certificate.objects.filter(
        revoked_at__isnull=True,
        not_after__gt=start,
        not_after__lte=at + stage.lead_time,
    ).exclude(_reminder_exists(stage))
    if stage == Stage.DAYS_30:
        query = query.not_renewed()
    return query.order_by("not_after", "pk")


def due_certificates_batch_query(
    *, at: datetime, stage: Stage, limit: int, after: tuple[datetime, int] | None = None
) -> QuerySet[Certificate]:
    """One batch of ``due_certificates_query``, after the key ``(not_after, pk)`` of the last."""
    query = due_certificates_query(at=at, stage=stage)
    if after is not None:
        not_after, pk = after
        query = query.filter(Q(not_after__gt=not_after) | Q(not_after=not_after, pk__gt=pk))
    return _with_mail_data(query)[:limit]


def due_certificates(
    *, at: datetime, stage: Stage, limit: int, after: tuple[datetime, int] | None = None
) -> list[Certificate]:
    return list(due_certificates_batch_query(at=at, stage=stage, limit=limit, after=after))


def reminder_ids_to_retry(*, now: datetime, max_attempts: int, limit: int) -> list[int]:
    """Records waiting for a retry, or claimed by a worker that never finished (lease over)."""
    return list(
        ExpiryReminder.objects.filter(
            status__in=ExpiryReminder.PENDING,
            next_attempt_at__lte=now,
            attempts__lt=max_attempts,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def claimed_reminders(*, ids: list[int], token) -> list[ExpiryReminder]:
    """The records of ``ids`` that the claim ``token`` holds, each with its certificate."""
    reminders = list(
        ExpiryReminder.objects.filter(pk__in=ids, claim_token=token)
        .select_related("certificate__user__customer")
        .defer("certificate__pem")
        .annotate(**Certificate.objects.renewal_columns("certificate_id"))
        .annotate(**Certificate.objects.auto_renewal_columns("certificate_id"))
        .order_by("pk")
    )
    for reminder in reminders:
        reminder.certificate.renewal_not_after = reminder.renewal_not_after
        reminder.certificate.renewal_revoked_at = reminder.renewal_revoked_at
        reminder.certificate.auto_renewal_checked_in_at = reminder.auto_renewal_checked_in_at
    return reminders


def next_pending_at() -> datetime | None:
    """When the next retry is due, or the earliest lease of a claim in flight ends."""
    return ExpiryReminder.objects.filter(status__in=ExpiryReminder.PENDING).aggregate(
        at=Min("next_attempt_at")
    )["at"]


@dataclass(frozen=True)
class Contacts:
    """The desks a customer calls (R15) and their hours line(s)."""

    rows: tuple[ContactRow, ...]
    hours: tuple[str, ...]


@dataclass
class DeskDirectory:
    """``desks_for_customer``, asked once per distinct (started, product lines) over a run.

    Customers share a handful of product-line sets, so a run of any size asks a handful of
    times; the customers' product lines are read once per batch (``load``), as plain ids.
    """

    _lines: dict[int, tuple[int, ...]] = field(default_factory=dict)
    _contacts: dict[tuple[bool, tuple[int, ...]], Contacts] = field(default_factory=dict)
    _hours: dict[str, str] | None = None

    def load(self, customers: Iterable[Customer]) -> None:
        """Reads the product lines of the customers not seen yet in this run, in one query."""
        new = {customer.pk for customer in customers} - self._lines.keys()
        if not new:
            return
        lines: dict[int, list[int]] = {pk: [] for pk in new}
        for customer_id, line_id in Customer.product_lines.through.objects.filter(
            customer_id__in=new
        ).values_list("customer_id", "productline_id"):
            lines[customer_id].append(line_id)
        self._lines.update({pk: tuple(sorted(ids)) for pk, ids in lines.items()})

    def for_customer(self, customer: Customer) -> Contacts:
        if customer.pk not in self._lines:
            self.load([customer])
        key = (customer.started_using, self._lines[customer.pk])
        if key not in self._contacts:
            rows = tuple(desks_for_customer(customer))
            hours = self._desk_hours()
            self._contacts[key] = Contacts(
                rows=rows,
                hours=tuple(dict.fromkeys(hours[r.desk] for r in rows if r.desk in hours)),
            )
        return self._contacts[key]

    def _desk_hours(self) -> dict[str, str]:
        if self._hours is None:
            self._hours = dict(ServiceDesk.objects.values_list("name", "hours"))
        return self._hours
