"""Celery tasks of the certificate authority's nightly and hourly jobs."""

from __future__ import annotations

from celery import shared_task

from issuance.services.expiry import record_expiries


@shared_task(name="issuance.tasks.expire_certificates")
def expire_certificates() -> int:
    """Daily at 00:05 JST: the expiry bookkeeping, each expiry once in the audit trail (R08)."""
    return record_expiries()


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
