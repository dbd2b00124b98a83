"""Desk scoping (R15), in one place: which customers a service desk looks after, and whose data
a staff account sees. Each desk sees the customers of its own product lines (the contact
table), 企保ネット導入サポートセンター the customers that have not started using the service, a
supervisor (or a superuser) every customer.

Every list, search, autocomplete, export and action of the admin, every aggregate of the
dashboard and every back-office service's check goes through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet

from issuance import roles
from issuance.models import (
    AuditEvent,
    Customer,
    DeskContact,
    InputLock,
    KihonetUser,
    MismatchAlert,
    ServiceDesk,
    StaffProfile,
)

# --- The customers of a desk ------------------------------------------------------------------


def desk_customer_filter(desk: ServiceDesk, customer_path: str) -> Q:
    """The customers a desk looks after, reached from a model by ``customer_path`` (``""``
    for Customer itself, ``"user__customer"`` for a certificate, …): the filter of every list.

    The before-start desk (導入サポートセンター) looks after the customers that have not started
    using the service; every other desk the customers of its product lines (R15).
    """
    prefix = f"{customer_path}__" if customer_path else ""
    if desk.is_onboarding:
        return Q(**{f"{prefix}started_using": False})
    served = DeskContact.objects.filter(
        desk=desk, product_line__customers=OuterRef(f"{prefix}pk" if prefix else "pk")
    )
    return Q(Exists(served))


def desk_customers(desk: ServiceDesk) -> QuerySet[Customer]:
    """The same customers as ``desk_customer_filter``, for aggregates: the desk's product lines
    are read first, so the planner sees a plain ``product line IN (…)`` it can estimate (the
    tiny contact tables are never auto-analyzed) and joins the whole table by hash, not row by
    row. Use it as ``…customer__in=desk_customers(desk).values("pk")``."""
    if desk.is_onboarding:
        return Customer.objects.filter(started_using=False)
    lines = list(DeskContact.objects.filter(desk=desk).values_list("product_line_id", flat=True))
    return Customer.objects.filter(product_lines__in=lines)


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
        return queryset.filter(desk_customer_filter(self.desk, customer_path))

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
