"""Whom a customer calls (R15): the contact table, the desks of a customer, a code or a
certificate, and the site's URL as the pages and the manual show it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from issuance.models import Certificate, Customer, DeskContact, Notice, ProductLine, ServiceDesk


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
