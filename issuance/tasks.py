"""Celery tasks of the certificate authority's nightly and hourly jobs."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from issuance import audit
from issuance.models import Certificate


def expire_certificates_now(now=None) -> int:
    """Marks every valid certificate past its expiry as expired (R08), in one statement."""
    now = now or timezone.now()
    with transaction.atomic():
        count = Certificate.objects.filter(
            status=Certificate.Status.VALID, not_after__lte=now
        ).update(status=Certificate.Status.EXPIRED)
        audit.record(
            audit.Actor.system("expire_certificates"),
            "certificates_expired",
            detail={"count": count, "at": now.isoformat()},
        )
    return count


@shared_task(name="issuance.tasks.expire_certificates")
def expire_certificates() -> int:
    """Daily at 00:05 JST."""
    return expire_certificates_now()


@shared_task(name="issuance.tasks.refresh_crl")
def refresh_crl() -> int:
    """Hourly: a fresh CRL well before the current one's nextUpdate."""
    from issuance.services.crl import refresh_crl as refresh  # the CA's code, loaded when used

    return refresh().number


@shared_task(name="issuance.tasks.refresh_dashboards")
def refresh_dashboards() -> int:
    """Every 4 minutes: the back office's dashboard figures, before their 5-minute cache ends."""
    from issuance.services.dashboards import warm_all_dashboards

    return warm_all_dashboards()
