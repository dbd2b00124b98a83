"""When a certificate should be renewed: the pure rules of the renewal-info answer.

In the spirit of ACME Renewal Information (RFC 9773): the server suggests a window, the
client picks a random moment inside it and renews at its first run after that moment. The
window lies inside the renewal window of R09 (from ``renewal_opens_at`` until the expiry) and
after the first day renewal is offered (R11). Each certificate's window starts at its own
offset from the opening, taken from a hash of its serial, so that the certificates of one
wave (issued on the same days) do not all renew in the same hour. No ORM here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

# The starts of the windows are spread over the first two weeks of the 30 days of R09; the
# second half stays for PCs that were off (holidays) and for the customer's own 「更新」.
SPREAD = timedelta(days=14)
# How long a window is: a PC switched on on most working days meets it, or renews at its
# first run after it (a window in the past means "renew now").
WINDOW_LENGTH = timedelta(days=1)
# A window the CA moved ("renew now") is short, so the PCs renew at their next run.
MOVED_WINDOW_LENGTH = timedelta(hours=1)
# How long the client waits before asking again, at most (Retry-After).
RETRY_AFTER = timedelta(hours=6)
MIN_RETRY_AFTER = timedelta(minutes=1)
# A check-in this recent counts as "auto-renewal is on" for the 30-day mail (R10).
RECENT_CHECK_IN = timedelta(days=7)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def spread_offset(serial: str, spread: timedelta = SPREAD) -> timedelta:
    """A deterministic offset in ``[0, spread)`` for ``serial``, uniform over certificates."""
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(serial.upper().encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def _clamp(moment: datetime, low: datetime, high: datetime) -> datetime:
    return max(low, min(moment, high))


def suggested_window(
    *,
    serial: str,
    opens_at: datetime,
    not_after: datetime,
    offered_from: datetime,
    moved: Window | None = None,
    spread: timedelta = SPREAD,
) -> Window | None:
    """The window to renew in, inside ``[max(opens_at, offered_from), not_after)``; None when
    that interval is empty (renewal is first offered after the expiry: a reissue, R16).

    ``moved``: the CA's window, clamped into the same interval. ``spread=timedelta(0)`` gives
    the window of a client that renews the moment R09 opens (what the bench compares with).
    """
    low = max(opens_at, offered_from)
    if low >= not_after:
        return None
    if moved is not None:
        start = _clamp(moved.start, low, not_after)
        end = _clamp(moved.end, start, not_after)
    else:
        # Never past the middle of what is left: a late start date (R11) shortens the spread.
        start = low + spread_offset(serial, min(spread, (not_after - low) / 2))
        end = min(start + WINDOW_LENGTH, not_after)
    if end <= start:
        end = min(start + MIN_RETRY_AFTER, not_after)
    return Window(start, end)


def retry_after(window: Window | None, now: datetime) -> timedelta:
    """When to ask again: in ``RETRY_AFTER``, or at the window's start if that comes sooner."""
    if window is not None and now < window.start:
        return max(MIN_RETRY_AFTER, min(RETRY_AFTER, window.start - now))
    return RETRY_AFTER


def checked_in_recently(checked_in_at: datetime | None, now: datetime) -> bool:
    """The PC reported auto-renewal on within ``RECENT_CHECK_IN`` before ``now``."""
    return checked_in_at is not None and now - RECENT_CHECK_IN <= checked_in_at <= now


def report_message(challenge: str, enabled: bool) -> bytes:
    """What the tool signs with the certificate's key to report its auto-renewal setting: the
    one-time challenge bound to the setting, so that neither can be replayed or flipped."""
    return f"kihonet-auto-renewal:{'on' if enabled else 'off'}:{challenge}".encode()
