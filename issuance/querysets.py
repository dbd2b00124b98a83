"""Named querysets for the questions the service asks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from issuance.pki import profile

if TYPE_CHECKING:
    # The models name the querysets' rows in the (quoted) base classes, which ruff does not read.
    from issuance.models import (  # noqa: F401
        Certificate,
        Customer,
        KihonetUser,
        Notice,
        ServiceDesk,
    )

M = TypeVar("M", bound=models.Model)
QS = TypeVar("QS", bound=models.QuerySet)


def one_or_none(queryset: models.QuerySet[M]) -> M | None:
    """The one row of a query on unique fields, or None. Unlike ``first()`` it adds no ORDER
    BY, which the hot paths (enrollment, renewal) would compile on every request."""
    try:
        return queryset.get()
    except ObjectDoesNotExist:
        return None


def _for_desk(queryset: QS, desk: ServiceDesk, customer_path: str) -> QS:
    """``queryset`` narrowed to the customers of ``desk`` (R15), by ``issuance.scoping``'s filter.

    Imported when used: ``issuance.scoping`` reads the models, which are built on these querysets.
    """
    from issuance.scoping import desk_customer_filter

    return queryset.filter(desk_customer_filter(desk, customer_path))


class CustomerQuerySet(models.QuerySet["Customer"]):
    def for_desk(self, desk: ServiceDesk) -> CustomerQuerySet:
        return _for_desk(self, desk, "")


class KihonetUserQuerySet(models.QuerySet["KihonetUser"]):
    def for_desk(self, desk: ServiceDesk) -> KihonetUserQuerySet:
        return _for_desk(self, desk, "customer")


class NoticeQuerySet(models.QuerySet["Notice"]):
    def unused(self) -> NoticeQuerySet:
        return self.filter(used_at__isnull=True)

    def for_desk(self, desk: ServiceDesk) -> NoticeQuerySet:
        return _for_desk(self, desk, "user__customer")


class CertificateQuerySet(models.QuerySet["Certificate"]):
    def valid(self, at: datetime | None = None) -> CertificateQuerySet:
        """Not revoked, and inside its validity period at ``at`` (now by default)."""
        at = at or timezone.now()
        return self.filter(revoked_at__isnull=True, not_before__lte=at, not_after__gt=at)

    def revoked(self) -> CertificateQuerySet:
        return self.filter(revoked_at__isnull=False)

    def not_revoked(self) -> CertificateQuerySet:
        return self.filter(revoked_at__isnull=True)

    def expired(self, at: datetime | None = None) -> CertificateQuerySet:
        """Past its expiry at ``at`` (now by default) and not revoked: a revoked certificate
        is revoked, before or after its expiry."""
        return self.not_revoked().filter(not_after__lte=at or timezone.now())

    def in_status(self, status: str, at: datetime | None = None) -> CertificateQuerySet:
        """The certificates whose ``Certificate.status_at(at)`` is ``status`` (valid, revoked or
        expired): the three are disjoint and cover every certificate."""
        at = at or timezone.now()
        if status == "revoked":
            return self.revoked()
        if status == "expired":
            return self.expired(at)
        if status == "valid":
            return self.not_revoked().filter(not_after__gt=at)
        raise ValueError(f"unknown certificate status {status!r}")

    def expiring_between(self, start: datetime, end: datetime) -> CertificateQuerySet:
        """Certificates whose expiry falls in ``[start, end)``."""
        return self.filter(not_after__gte=start, not_after__lt=end)

    def for_desk(self, desk: ServiceDesk) -> CertificateQuerySet:
        return _for_desk(self, desk, "user__customer")

    def holding(self, cert: x509.Certificate) -> CertificateQuerySet:
        """The row of ``cert`` exactly: found by its serial (unique), and the same bytes.

        The fingerprint needs no index of its own: a certificate's serial is inside it, so two
        rows with one fingerprint would have one serial, which the serial's constraint forbids."""
        return self.filter(
            serial=profile.serial_hex(cert.serial_number),
            fingerprint=profile.certificate_fingerprint(cert),
        )

    def for_user(self, user) -> CertificateQuerySet:
        return self.filter(user=user)

    # "Renewed" has one meaning everywhere (renewal's refusal, R12, and the reminders, R10): a
    # renewal was made from the certificate, whether or not that renewal was revoked since.  A
    # certificate is renewed once (``renewed_from`` is one-to-one), so after a revoked renewal
    # the way back is a reissue (R16), never a second renewal or a "please renew" mail.

    def renewals_of(self, certificate) -> CertificateQuerySet:
        """The renewal made from ``certificate`` (a row, a pk or an ``OuterRef``)."""
        return self.filter(renewed_from=certificate).order_by()

    def renewed(self) -> CertificateQuerySet:
        return self.filter(Exists(self.model.objects.renewals_of(OuterRef("pk"))))

    def not_renewed(self) -> CertificateQuerySet:
        return self.exclude(Exists(self.model.objects.renewals_of(OuterRef("pk"))))

    def renewal_columns(self, outer: str = "pk") -> dict[str, Subquery]:
        """``renewal_not_after`` and ``renewal_revoked_at`` of the renewal made from the
        certificate that the outer query's ``outer`` names (None when it was not renewed), to
        annotate a query of certificates or of rows pointing at one."""
        renewal = self.model.objects.renewals_of(OuterRef(outer))
        return {
            "renewal_not_after": Subquery(renewal.values("not_after")[:1]),
            "renewal_revoked_at": Subquery(renewal.values("revoked_at")[:1]),
        }

    def with_renewal(self) -> CertificateQuerySet:
        return self.annotate(**self.renewal_columns())

    def auto_renewal_columns(self, outer: str = "pk") -> dict[str, Subquery]:
        """``auto_renewal_checked_in_at``: when the PC of the certificate that ``outer`` names
        last reported auto-renewal on (None when it is off or never reported)."""
        from issuance.models import AutoRenewal

        report = AutoRenewal.objects.filter(certificate=OuterRef(outer), enabled=True)
        return {"auto_renewal_checked_in_at": Subquery(report.values("checked_in_at")[:1])}
