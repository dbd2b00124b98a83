"""Reads: the questions the pages, the admin and the jobs ask of the data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from issuance import tokens
from issuance.models import (
    Certificate,
    Customer,
    DeskContact,
    Enrollment,
    Notice,
    ProductLine,
    RenewalWindowMove,
    ServiceDesk,
)
from issuance.rules import renewal_info
from issuance.rules.renewal import renewal_opens_at


@dataclass(frozen=True)
class ContactRow:
    product_line: str
    desk: str
    phone: str

    def as_dict(self) -> dict[str, str]:
        return {"product_line": self.product_line, "desk": self.desk, "phone": self.phone}


def site_url() -> dict:
    """The URL the customer types (``site_url``), and ``site_is_https``: the manual's warning
    about the "s" of https is shown only for an https URL (R17)."""
    url = f"{settings.KIHONET_BASE_URL}/"
    return {"site_url": url, "site_is_https": url.startswith("https://")}


def onboarding_desk() -> ServiceDesk | None:
    """企保ネット導入サポートセンター: the desk for customers before their first certificate."""
    return ServiceDesk.objects.filter(kind=ServiceDesk.Kind.ONBOARDING).first()


def contact_table() -> list[tuple[ProductLine, list[DeskContact]]]:
    """The contact table of the manual, grouped by product line (R15)."""
    contacts = DeskContact.objects.select_related("product_line", "desk").order_by(
        "product_line__display_order", "pk"
    )
    grouped: dict[int, tuple[ProductLine, list[DeskContact]]] = {}
    for contact in contacts:
        grouped.setdefault(contact.product_line_id, (contact.product_line, []))[1].append(contact)
    return list(grouped.values())


def desks_detail(customer: Customer) -> dict[str, list[dict[str, str]]]:
    """The desks to call (R15), as the ``desks`` member of an error's JSON."""
    return {"desks": [row.as_dict() for row in desks_for_customer(customer)]}


def _onboarding_rows() -> list[ContactRow]:
    desk = onboarding_desk()
    return [ContactRow("", desk.name, desk.phone)] if desk else []


def desks_for_customer(customer: Customer) -> list[ContactRow]:
    """Whom this customer calls (R15): the before-start desk, or its product lines' desks."""
    if not customer.started_using:
        return _onboarding_rows()
    contacts = (
        DeskContact.objects.filter(product_line__in=customer.product_lines.all())
        .select_related("product_line", "desk")
        .order_by("product_line__display_order", "pk")
    )
    return [ContactRow(c.product_line.name, c.desk.name, c.phone) for c in contacts]


def desks_for_kihonet_code(kihonet_code: str) -> list[ContactRow]:
    """Whom to call about the 企保ネットコード the customer typed (R15): its product lines'
    desks once the customer has started using the service, else (or for a code that is not
    ours) 企保ネット導入サポートセンター."""
    customer = Customer.objects.filter(kihonet_code=kihonet_code).first()
    return desks_for_customer(customer) if customer else _onboarding_rows()


def desks_for_certificate(certificate: Certificate) -> list[ContactRow]:
    """Whom the holder of a just-made certificate calls (R15): after a first acquisition (the
    notice 「ユーザーIDのお知らせ」) the before-start desk, after a reissue or a renewal the
    customer's desks."""
    notice = certificate.notice
    first = certificate.renewed_from_id is None and notice and notice.kind == Notice.Kind.NEW
    if first:
        desk = onboarding_desk()
        return [ContactRow("", desk.name, desk.phone)] if desk else []
    return desks_for_customer(certificate.user.customer)


def is_replaced(notice: Notice, notices_of_user: Iterable[Notice]) -> bool:
    """R16: a notice is replaced once its user has a (reissue) notice with a later branch
    number. Branch numbers are three digits, so they compare as strings."""
    return any(other.branch_number > notice.branch_number for other in notices_of_user)


def open_enrollment(token: str) -> Enrollment | None:
    """The enrollment of ``token`` while it can still go on: known, not expired, not done."""
    return Enrollment.objects.filter(
        token_digest=tokens.digest(token), certificate__isnull=True, expires_at__gt=timezone.now()
    ).first()


def enrolled_certificate(token: str) -> Certificate | None:
    found = (
        Enrollment.objects.select_related("certificate")
        .filter(token_digest=tokens.digest(token), certificate__isnull=False)
        .first()
    )
    return found.certificate if found else None


def has_renewal(certificate: Certificate) -> bool:
    return Certificate.objects.renewals_of(certificate).exists()


def certificate_status(serial: str, now: datetime) -> str | None:
    """The client tool's view of a certificate: valid, renewed, revoked or expired.

    Revoked before expired before renewed: a renewed certificate that has expired is
    "expired". None for a serial kihonet did not issue.
    """
    certificate = Certificate.objects.filter(serial=serial).first()
    if certificate is None:
        return None
    return _status_of(certificate, now)


def _status_of(certificate: Certificate, now: datetime) -> str:
    status = certificate.status_at(now)
    if status != Certificate.Status.VALID:
        return status.value
    return "renewed" if has_renewal(certificate) else status.value


def renewed_certificate(serial: str) -> Certificate | None:
    """A certificate made by a renewal, by its serial (unguessable: 159 random bits)."""
    return Certificate.objects.filter(serial=serial.upper(), renewed_from__isnull=False).first()


def open_challenge_count(certificate: Certificate, now: datetime) -> int:
    """Renewal challenges of ``certificate`` that are neither used nor expired."""
    return certificate.renewal_challenges.filter(used_at__isnull=True, expires_at__gt=now).count()


def renewal_offered_from() -> datetime:
    """R11: the first moment renewal is offered, 0:00 Japan time of the start date."""
    return timezone.make_aware(datetime.combine(settings.KIHONET_RENEWAL_START_DATE, time.min))


@dataclass(frozen=True)
class RenewalInfo:
    """The renewal-info answer: the certificate's status and, while it is valid and not
    renewed, the suggested window (``renewal_info.suggested_window``)."""

    serial: str
    status: str
    window: renewal_info.Window | None
    retry_after: timedelta
    moved: bool


def renewal_info_of(
    certificate: Certificate, now: datetime, *, spread: timedelta = renewal_info.SPREAD
) -> RenewalInfo:
    status = _status_of(certificate, now)
    window = None
    move = RenewalWindowMove.objects.filter(certificate=certificate).first()
    if status == "valid":
        window = renewal_info.suggested_window(
            serial=certificate.serial,
            opens_at=renewal_opens_at(certificate.not_after),
            not_after=certificate.not_after,
            offered_from=renewal_offered_from(),
            moved=renewal_info.Window(move.start, move.end) if move else None,
            spread=spread,
        )
    return RenewalInfo(
        serial=certificate.serial,
        status=status,
        window=window,
        retry_after=renewal_info.retry_after(window, now),
        moved=move is not None and window is not None,
    )


def renewal_info_for_serial(serial: str, now: datetime) -> RenewalInfo | None:
    """``GET /api/v1/certificates/{serial}/renewal-info``; None for a serial not ours."""
    certificate = Certificate.objects.filter(serial=serial).first()
    return renewal_info_of(certificate, now) if certificate else None
