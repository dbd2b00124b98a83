"""Writing the audit trail: every service that changes something calls ``record``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from issuance.models import AuditEvent, KihonetUser


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, a customer (by address) or a named system job."""

    type: str
    label: str
    staff: Any = None
    ip_address: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, job)

    @classmethod
    def customer(cls, label: str, ip_address: str | None = None) -> Actor:
        return cls(AuditEvent.ActorType.CUSTOMER, label or "customer", ip_address=ip_address)

    @classmethod
    def staff_user(cls, user, ip_address: str | None = None) -> Actor:
        return cls(AuditEvent.ActorType.STAFF, user.get_username(), staff=user,
                   ip_address=ip_address)


def record(
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    *,
    kihonet_user: KihonetUser | None = None,
    reason: str = "",
    detail: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor_type=actor.type,
        actor=actor.label,
        staff=actor.staff,
        ip_address=actor.ip_address,
        action=action,
        kihonet_user=kihonet_user,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        reason=reason,
        detail=detail or {},
    )
