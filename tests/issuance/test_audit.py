"""audit.create_with_event: the new row and the event of its creation, both or neither."""

from __future__ import annotations

import secrets

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
    with pytest.raises(IntegrityError) as refused:
        create("80000003")  # the 企保ネットコード is unique
    if connection.vendor == "postgresql":  # its driver names the constraint that fired
        assert refused.value.__cause__.diag.constraint_name == "issuance_customer_kihonet_code_key"
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


@pytest.mark.parametrize("model_name", ["Certificate", "Customer"])
def test_on_postgresql_the_statement_writes_every_column_of_both_tables(postgres, model_name):
    """The hand-built statement (kept: it buys about half again the issuing rate, bench ca)
    must write each column of the new row's table but its id, and each of the event's but its
    id; a field added to either model, or a column added by a migration, that it does not write
    fails here."""
    from issuance import models

    model = getattr(models, model_name)
    sql, obj_fields, event_fields = audit._insert_both_plan(connection.alias, model)

    def table_columns(table: str) -> set[str]:
        with connection.cursor() as cursor:
            return {c.name for c in connection.introspection.get_table_description(cursor, table)}

    assert {f.column for f in obj_fields} == table_columns(model._meta.db_table) - {"id"}
    assert {f.column for f in event_fields} | {"object_id"} == table_columns(
        AuditEvent._meta.db_table
    ) - {"id"}
    for field in (*obj_fields, *event_fields):
        assert f'"{field.column}"' in sql


def test_on_postgresql_every_field_reads_back_as_the_orm_would_store_it(postgres):
    """A certificate written by the statement reads back equal, field by field, to the same
    certificate saved by the ORM."""
    from datetime import timedelta

    from django.utils import timezone

    from issuance.models import Certificate
    from tests.factories import make_user

    user = make_user()
    now = timezone.now().replace(microsecond=0)

    def certificate(serial: str) -> Certificate:
        return Certificate(
            user=user,
            serial=serial,
            subject="CN=TEST",
            email=user.email,
            not_before=now,
            not_after=now + timedelta(days=1095),
            pem="-----BEGIN CERTIFICATE-----\n",
            fingerprint=secrets.token_hex(32),
            public_key_fingerprint=secrets.token_hex(32),
        )

    by_statement = certificate("AA01")
    audit.create_with_event(by_statement, ACTOR, "certificate_issued", kihonet_user=user)
    by_orm = certificate("AA02")
    by_orm.save(force_insert=True)
    stored = {c.pk: c for c in Certificate.objects.filter(pk__in=[by_statement.pk, by_orm.pk])}
    different = {"id", "serial", "fingerprint", "public_key_fingerprint", "created_at"}
    for field in Certificate._meta.concrete_fields:
        if field.name in different:
            continue
        assert field.value_from_object(stored[by_statement.pk]) == field.value_from_object(
            stored[by_orm.pk]
        ), field.name
