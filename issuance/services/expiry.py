"""The expiry bookkeeping: each certificate's expiry written once into the audit trail (R08).

A certificate's state is never stored: it is expired from its ``not_after`` on (see
``Certificate.status_at``). What the nightly job adds is the record of it: one
``certificate_expired`` event per certificate, on its user, so that the desk's history of the
user reads 証明書の有効期限切れ beside the issue and the revocation. A revoked certificate stays
revoked, so its expiry is not recorded.

Each run writes, in one transaction, the events of the certificates whose ``not_after`` falls
after the previous run's bound and at or before its own, and its own ``certificates_expired``
event holding that bound (``through``). Runs take one advisory lock, so a second run, at once or
later, starts where the first one ended and records nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from issuance import audit
from issuance.models import AuditEvent, Certificate
from issuance.services.locks import lock_until_commit

JOB = "expire_certificates"
RUN_ACTION = "certificates_expired"
EXPIRY_ACTION = "certificate_expired"
BATCH = 2000


def previous_bound() -> datetime | None:
    """Where the last run ended; None before the first (whose events, up to the removal of the
    stored state, had no bound and no per-certificate events: the first run here covers every
    expiry so far)."""
    last = (
        AuditEvent.objects.filter(action=RUN_ACTION, detail__has_key="through")
        .order_by("-pk")
        .values_list("detail", flat=True)
        .first()
    )
    return parse_datetime(last["through"]) if last else None


@transaction.atomic
def record_expiries(now: datetime | None = None) -> int:
    """Records the expiries since the previous run up to ``now``; how many it recorded."""
    now = now or timezone.now()
    lock_until_commit(
        "kihonet:expiry-bookkeeping"
    )  # first: a run that waited here reads the bound of the run it waited for
    since = previous_bound()
    through = max(now, since) if since else now
    expired = Certificate.objects.expired(through)
    if since:
        expired = expired.filter(not_after__gt=since)
    actor = audit.Actor.system(JOB)
    count = 0
    batch: list[AuditEvent] = []
    rows = expired.order_by("not_after", "pk").only("pk", "serial", "not_after", "user_id")
    for certificate in rows.iterator(chunk_size=BATCH):
        event = audit.event(
            actor,
            EXPIRY_ACTION,
            certificate,
            detail={"serial": certificate.serial, "not_after": certificate.not_after.isoformat()},
        )
        event.kihonet_user_id = certificate.user_id  # the user's history, without loading it
        batch.append(event)
        if len(batch) == BATCH:
            count += _save(batch)
    count += _save(batch)
    audit.record(
        actor,
        RUN_ACTION,
        detail={"through": through.astimezone(UTC).isoformat(), "count": count},
    )
    return count


def _save(batch: list[AuditEvent]) -> int:
    AuditEvent.objects.bulk_create(batch)
    saved = len(batch)
    batch.clear()
    return saved
