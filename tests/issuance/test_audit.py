"""audit.create_with_event: the new row and the event of its creation, both or neither."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from issuance import audit
from issuance.models import AuditEvent, Customer

ACTOR = audit.Actor.system("test")


def create(code: str) -> tuple[Customer, AuditEvent]:
    customer = Customer(kihonet_code=code, name="監査テスト株式会社")
    event = audit.create_with_event(customer, ACTOR, "customer_created", detail={"code": code})
    return customer, event


@pytest.mark.django_db
def test_both_rows_are_written_and_linked():
    customer, event = create("80000001")
    assert Customer.objects.get(pk=customer.pk).name == "監査テスト株式会社"
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.object_type, stored.object_id) == ("customer", str(customer.pk))
    assert (stored.action, stored.actor, stored.detail) == (
        "customer_created",
        "test",
        {"code": "80000001"},
    )
    assert not customer._state.adding and not event._state.adding


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_it_is_one_statement_and_its_own_transaction(postgres):
    with CaptureQueriesContext(connection) as queries:
        create("80000002")
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("WITH new_row AS (INSERT INTO")
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_refused_row_leaves_no_event():
    create("80000003")
    events = AuditEvent.objects.count()
    with pytest.raises(IntegrityError):
        create("80000003")  # the 企保ネットコード is unique
    assert AuditEvent.objects.count() == events
    assert Customer.objects.filter(kihonet_code="80000003").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_fallback_of_other_databases_writes_both_in_a_transaction(monkeypatch):
    """The path SQLite takes (make run's default), proven on any database."""
    monkeypatch.setattr(connection, "vendor", "other")
    customer, event = create("80000004")
    assert AuditEvent.objects.get(pk=event.pk).object_id == str(customer.pk)
    with pytest.raises(IntegrityError):
        create("80000004")
    assert AuditEvent.objects.filter(object_id=str(customer.pk)).count() == 1
