"""The renewal window (R09) and the renewal start date (R11): when renewal opens for one
certificate, and from which day renewal is offered at all. Pure: dates and settings only."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from issuance.models import Certificate

RENEWAL_WINDOW_DAYS = 30


def renewal_opens_at(not_after: datetime) -> datetime:
    """R09: renewal opens at 0:00 Japan time on the day 30 days before the expiry date (JST)."""
    opening_day = timezone.localdate(not_after) - timedelta(days=RENEWAL_WINDOW_DAYS)
    return timezone.make_aware(datetime.combine(opening_day, time.min))


def is_in_renewal_window(certificate: Certificate, now: datetime) -> bool:
    """From ``renewal_opens_at`` until the expiry instant itself (excluded)."""
    return renewal_opens_at(certificate.not_after) <= now < certificate.not_after


def renewal_offered(now: datetime) -> bool:
    """R11: renewal is offered from the configured start date on (Japan time)."""
    return timezone.localdate(now) >= settings.KIHONET_RENEWAL_START_DATE


def renewal_not_yet_offered_message() -> str:
    """R11's notice before the start date: the manual's 「2025年までは…」 for a start on
    2026-01-01, the last day itself for a start on any other day."""
    last = settings.KIHONET_RENEWAL_START_DATE - timedelta(days=1)
    if (last.month, last.day) == (12, 31):
        until = _("%(year)s年") % {"year": last.year}
    else:
        until = _("%(year)s年%(month)s月%(day)s日") % {
            "year": last.year,
            "month": last.month,
            "day": last.day,
        }
    return _("%(until)sまでは新規取得のみの取扱いとなります") % {"until": until}
