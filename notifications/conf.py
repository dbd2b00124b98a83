"""The reminder job's knobs, each overridable in the Django settings (tests shorten the waits)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

DEFAULTS = {
    # Certificates read, claimed and mailed per batch (one SMTP connection per batch).
    "KIHONET_REMINDER_BATCH_SIZE": 1000,
    # Attempts at one mail before it is recorded as failed.
    "KIHONET_REMINDER_MAX_ATTEMPTS": 8,
    # First wait after a temporary SMTP failure; each further wait doubles, up to the cap.
    "KIHONET_REMINDER_RETRY_BASE_SECONDS": 300,
    "KIHONET_REMINDER_RETRY_MAX_SECONDS": 6 * 3600,
    # A claim not finished within this time counts as abandoned by a crashed worker.
    "KIHONET_REMINDER_CLAIM_LEASE_SECONDS": 15 * 60,
    # The longest countdown of a wake-up task; kept under the Redis visibility timeout (1 h).
    "KIHONET_REMINDER_WAKEUP_MAX_SECONDS": 30 * 60,
}


def _get(name: str) -> int:
    return int(getattr(settings, name, DEFAULTS[name]))


def batch_size() -> int:
    return _get("KIHONET_REMINDER_BATCH_SIZE")


def max_attempts() -> int:
    return _get("KIHONET_REMINDER_MAX_ATTEMPTS")


def claim_lease() -> timedelta:
    return timedelta(seconds=_get("KIHONET_REMINDER_CLAIM_LEASE_SECONDS"))


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2×base, 4×base … up to the cap."""
    base = _get("KIHONET_REMINDER_RETRY_BASE_SECONDS")
    seconds = min(base * 2 ** max(attempts - 1, 0), _get("KIHONET_REMINDER_RETRY_MAX_SECONDS"))
    return timedelta(seconds=seconds)


def wakeup_max_seconds() -> int:
    return _get("KIHONET_REMINDER_WAKEUP_MAX_SECONDS")
