"""Staff sign-in throttling: after ``KIHONET_STAFF_LOGIN_MAX_FAILURES`` failed sign-ins for one
username within the window, the username is locked for a while. Counted in the shared cache
(Redis in production and CI), so the limit holds across processes."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from issuance import audit


def _digest(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def _failures_key(username: str) -> str:
    return f"kihonet:staff-login:failures:{_digest(username)}"


def _lock_key(username: str) -> str:
    return f"kihonet:staff-login:locked:{_digest(username)}"


def is_locked(username: str) -> bool:
    return bool(username) and cache.get(_lock_key(username)) is not None


def record_failure(username: str, ip_address: str | None) -> bool:
    """Counts a failed sign-in; True when this failure locks the username."""
    if not username:
        return False
    key = _failures_key(username)
    cache.add(key, 0, settings.KIHONET_STAFF_LOGIN_WINDOW_SECONDS)
    try:
        failures = cache.incr(key)
    except ValueError:  # the count expired between add and incr
        cache.set(key, 1, settings.KIHONET_STAFF_LOGIN_WINDOW_SECONDS)
        failures = 1
    if failures < settings.KIHONET_STAFF_LOGIN_MAX_FAILURES:
        return False
    cache.set(_lock_key(username), 1, settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS)
    cache.delete(key)
    audit.record(
        audit.Actor.system("staff_login"),
        "staff_login_locked",
        detail={"username": username[:150], "ip_address": ip_address, "failures": failures},
    )
    return True


def forget_failures(username: str) -> None:
    cache.delete(_failures_key(username))


def unlock(username: str) -> None:
    """For a superuser who has confirmed the person: clears the lock and the count."""
    cache.delete_many([_lock_key(username), _failures_key(username)])
