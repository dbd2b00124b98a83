"""The back office's dashboard figures, kept in the cache: computed ahead of the staff by the
``refresh_dashboards`` job (every 4 minutes, the cache keeps them 5), so that a clerk never
waits for them; a figure not in the cache is computed and stored on the spot."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from issuance.models import ServiceDesk
from issuance.selectors.dashboard import Dashboard, dashboard

DASHBOARD_CACHE_SECONDS = 300


def _dashboard_key(desk: ServiceDesk | None, now: datetime) -> str:
    return f"kihonet:dashboard:{desk.pk if desk else 'all'}:{timezone.localdate(now)}"


def cached_dashboard(desk: ServiceDesk | None, now: datetime | None = None) -> Dashboard:
    """The figures of ``desk`` (all desks when None) from the cache, or computed and stored."""
    now = now or timezone.now()
    found = cache.get(_dashboard_key(desk, now))
    if found is None:
        found = warm_dashboard(desk, now)
    return found


def warm_dashboard(desk: ServiceDesk | None, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    found = dashboard(desk, now)
    cache.set(_dashboard_key(desk, now), found, DASHBOARD_CACHE_SECONDS)
    return found


def warm_all_dashboards(now: datetime | None = None) -> int:
    """Every desk's figures and the all-desks figures, computed ahead of the staff."""
    desks: list[ServiceDesk | None] = [None, *ServiceDesk.objects.all()]
    for desk in desks:
        warm_dashboard(desk, now)
    return len(desks)
