"""Fixtures of the back-office tests: one customer per product line, a customer before its
first certificate, and staff accounts of each desk and role."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest
from django.utils import timezone

from issuance.models import Certificate, Customer, KihonetUser, ServiceDesk
from tests.factories import make_customer, make_notice, make_user

CONTACTS_CSV = Path(__file__).resolve().parents[1] / "data" / "contacts.csv"
ONBOARDING = "企保ネット導入サポートセンター"
_serials = count(0xA0000)


def desks_of_product_lines() -> dict[str, set[str]]:
    """The contact table of the spec (R15): product line -> the desks that serve it."""
    table: dict[str, set[str]] = defaultdict(set)
    with CONTACTS_CSV.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            table[row["product_line"]].add(row["desk"])
    return dict(table)


def all_desk_names() -> list[str]:
    names = {desk for desks in desks_of_product_lines().values() for desk in desks}
    return [ONBOARDING, *sorted(names)]


def make_certificate(user: KihonetUser, *, days_left: int = 400, **fields) -> Certificate:
    n = next(_serials)
    now = timezone.now()
    fields.setdefault("not_before", now - timedelta(days=1095 - days_left))
    fields.setdefault("not_after", now + timedelta(days=days_left))
    return Certificate.objects.create(
        user=user,
        serial=f"{n:X}",
        subject=f"CN={user.user_id}",
        email=user.email,
        pem="-",
        fingerprint=f"{n:064x}",
        public_key_fingerprint=f"{n + 10**9:064x}",
        **fields,
    )


@dataclass
class Population:
    """One started customer per product line (a user, a notice, a certificate each), and one
    customer that has not started using the service."""

    by_line: dict[str, KihonetUser]
    not_started: KihonetUser
    not_started_line: str = "総合福祉団体定期保険"

    @property
    def users(self) -> list[KihonetUser]:
        return [*self.by_line.values(), self.not_started]

    def visible_to(self, desk_name: str) -> set[str]:
        """The user IDs a desk's staff may see, from the contact table alone: the before-start
        desk the customers not started yet; a product desk its product lines' customers."""
        if desk_name == ONBOARDING:
            return {self.not_started.user_id}
        table = desks_of_product_lines()
        visible = {user.user_id for line, user in self.by_line.items() if desk_name in table[line]}
        if desk_name in table[self.not_started_line]:
            visible.add(self.not_started.user_id)
        return visible


@pytest.fixture
def population(db) -> Population:
    by_line = {}
    for line in desks_of_product_lines():
        user = make_user(make_customer(product_lines=(line,), started_using=True))
        make_notice(user)
        make_certificate(user)
        by_line[line] = user
    not_started = make_user(make_customer(product_lines=(Population.not_started_line,)))
    make_notice(not_started)
    return Population(by_line=by_line, not_started=not_started)


@pytest.fixture
def desks(db) -> dict[str, ServiceDesk]:
    return {desk.name: desk for desk in ServiceDesk.objects.all()}


def customer_of(user: KihonetUser) -> Customer:
    return Customer.objects.get(pk=user.customer_id)
