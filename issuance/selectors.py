"""Reads: the questions the pages, the admin and the jobs ask of the data."""

from __future__ import annotations

from dataclasses import dataclass

from issuance.models import Customer, DeskContact, ProductLine, ServiceDesk


@dataclass(frozen=True)
class ContactRow:
    product_line: str
    desk: str
    phone: str


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


def desks_for_customer(customer: Customer) -> list[ContactRow]:
    """Whom this customer calls (R15): the before-start desk, or its product lines' desks."""
    if not customer.started_using:
        desk = onboarding_desk()
        return [ContactRow("", desk.name, desk.phone)] if desk else []
    contacts = DeskContact.objects.filter(
        product_line__in=customer.product_lines.all()
    ).select_related("product_line", "desk").order_by("product_line__display_order", "pk")
    return [ContactRow(c.product_line.name, c.desk.name, c.phone) for c in contacts]
