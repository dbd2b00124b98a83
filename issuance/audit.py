"""Writing the audit trail: every service that changes something calls ``record``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from issuance.models import AuditEvent, KihonetUser


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, a customer (by address) or a named system job."""

    type: str
    label: str
    staff: Any = None
    ip_address: str | None = None

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, job)

    @classmethod
    def customer(cls, label: str, ip_address: str | None = None) -> Actor:
        return cls(AuditEvent.ActorType.CUSTOMER, label or "customer", ip_address=ip_address)

    @classmethod
    def staff_user(cls, user, ip_address: str | None = None) -> Actor:
        return cls(
            AuditEvent.ActorType.STAFF, user.get_username(), staff=user, ip_address=ip_address
        )


def event(
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    *,
    kihonet_user: KihonetUser | None = None,
    reason: str = "",
    detail: dict | None = None,
) -> AuditEvent:
    """The event, not yet saved."""
    return AuditEvent(
        actor_type=actor.type,
        actor=actor.label,
        staff=actor.staff,
        ip_address=actor.ip_address,
        action=action,
        kihonet_user=kihonet_user,
        object_type=(obj._meta.model_name or "") if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        reason=reason,
        detail=detail or {},
    )


def record(actor: Actor, action: str, obj: models.Model | None = None, **fields) -> AuditEvent:
    """Writes the event of ``action`` on ``obj`` (saved already)."""
    new = event(actor, action, obj, **fields)
    new.save()
    return new


def create_with_event(obj: models.Model, actor: Actor, action: str, **fields) -> AuditEvent:
    """Saves the new ``obj`` and the event of its creation, both or neither.

    On PostgreSQL both rows go in one statement (an INSERT inside WITH), so that even outside
    a transaction it is atomic, and it is one round trip: this is the CA's issuing path, where
    BEGIN, two INSERTs and COMMIT cost more than signing. Elsewhere it is two saves in a
    transaction. Kept because it buys about half again the issuing rate over those two saves
    (``python -m bench ca`` measures both side by side); the statement is made from the models'
    fields, and tests/issuance/test_audit.py fails when it leaves a column of either table out.
    """
    new = event(actor, action, obj, **fields)
    database = connections[DEFAULT_DB_ALIAS]
    if database.vendor != "postgresql":
        with transaction.atomic():
            obj.save(force_insert=True)
            new.object_id = str(obj.pk)
            new.save()
        return new
    _insert_both(database, obj, new)
    return new


def _insert_both(database: BaseDatabaseWrapper, obj: models.Model, new: AuditEvent) -> None:
    """``INSERT obj; INSERT new`` as one statement, ``new.object_id`` the id ``obj`` gets."""
    sql, obj_fields, event_fields = _insert_both_plan(database.alias, type(obj))
    values = _insert_values(database, obj, obj_fields) + _insert_values(database, new, event_fields)
    with database.cursor() as cursor:
        cursor.execute(sql, values)
        new.pk, new.object_id = cursor.fetchone()
    obj.pk = obj._meta.pk.to_python(new.object_id)
    for saved in (obj, new):
        saved._state.adding = False
        saved._state.db = database.alias


@functools.cache
def _insert_both_plan(
    alias: str, model: type[models.Model]
) -> tuple[str, tuple[models.Field, ...], tuple[models.Field, ...]]:
    """The statement of :func:`_insert_both` for ``model`` and the fields that give its values,
    in order. It depends only on the models, so it is made once per process."""
    primary_key = model._meta.pk
    if not isinstance(primary_key, models.AutoField | models.BigAutoField):
        raise TypeError(f"{model.__name__} has no database-generated primary key")
    quote = connections[alias].ops.quote_name
    obj_fields = _concrete_fields(model, exclude={primary_key.name})
    event_fields = _concrete_fields(AuditEvent, exclude={"id", "object_id"})
    sql = (  # names from the models' metadata; every value is a parameter
        f"WITH new_row AS (INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({_columns(quote, obj_fields)}) VALUES ({_placeholders(obj_fields)}) "
        f"RETURNING {quote(_column(primary_key))} AS pk) "
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({_columns(quote, event_fields)}, "
        f"object_id) SELECT {_placeholders(event_fields)}, new_row.pk::text FROM new_row "
        f"RETURNING id, object_id"
    )
    return sql, obj_fields, event_fields


def _concrete_fields(model: type[models.Model], exclude: set[str]) -> tuple[models.Field, ...]:
    return tuple(field for field in model._meta.concrete_fields if field.name not in exclude)


def _columns(quote: Callable[[str], str], fields: tuple[models.Field, ...]) -> str:
    return ", ".join(quote(_column(field)) for field in fields)


def _column(field: models.Field) -> str:
    # Only fields without a column (``concrete`` False) have None; these are concrete fields.
    return cast(str, field.column)


def _placeholders(fields: tuple[models.Field, ...]) -> str:
    return ", ".join(["%s"] * len(fields))


def _insert_values(
    database: BaseDatabaseWrapper, obj: models.Model, fields: tuple[models.Field, ...]
) -> list:
    """The values of ``fields`` that ``obj.save()`` would insert."""
    return [field.get_db_prep_save(field.pre_save(obj, add=True), database) for field in fields]
