"""Edits of customer records in the back office (superusers' forms) and exports, audited.

The admin's change form already runs in one transaction (``ModelAdmin.changeform_view``); each
save here writes its row and its audit event together inside it.
"""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import QuerySet

from issuance import audit
from issuance.models import KihonetUser


def _kihonet_user(obj: models.Model) -> KihonetUser | None:
    if isinstance(obj, KihonetUser):
        return obj
    user = getattr(obj, "user", None)
    return user if isinstance(user, KihonetUser) else None


@transaction.atomic
def save_record(obj: models.Model, actor: audit.Actor, *, changed_fields: list[str]) -> None:
    """Saves ``obj`` as edited in a form, with a ``record_created`` or ``record_changed`` event
    naming the fields the form changed (not their values: they may be personal data)."""
    created = obj.pk is None
    obj.save()
    audit.record(
        actor,
        "record_created" if created else "record_changed",
        obj,
        kihonet_user=_kihonet_user(obj),
        detail={"model": obj._meta.model_name, "fields": sorted(changed_fields)},
    )


@transaction.atomic
def record_export(queryset: QuerySet, actor: audit.Actor) -> int:
    """The ``data_exported`` event of an export of ``queryset``'s rows; returns their count."""
    rows = queryset.count()
    audit.record(
        actor, "data_exported", detail={"model": queryset.model._meta.model_name, "rows": rows}
    )
    return rows
