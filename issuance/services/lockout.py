"""Brute force: after 5 mismatches for one 企保ネットコード within an hour, or 20 from one
address, further tries are refused for a while. Counted in the shared cache, so the limit holds
across processes; a lock is also written down so that staff can see and lift it.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from issuance import audit
from issuance.errors import LockedError
from issuance.models import InputLock

WINDOW_SECONDS = 60 * 60
LIMITS = {InputLock.Kind.KIHONET_CODE: 5, InputLock.Kind.IP_ADDRESS: 20}


def _key(kind: str, value: str) -> str:
    return f"kihonet:mismatch:{kind}:{value}"


def _subjects(kihonet_code: str, ip_address: str | None) -> list[tuple[str, str]]:
    subjects = [(InputLock.Kind.KIHONET_CODE, kihonet_code)]
    if ip_address:
        subjects.append((InputLock.Kind.IP_ADDRESS, ip_address))
    return subjects


def check_not_locked(kihonet_code: str, ip_address: str | None) -> dict[str, int]:
    """Raises LockedError when a limit is reached; else the current counts, by cache key
    (one round trip to the cache for both)."""
    subjects = _subjects(kihonet_code, ip_address)
    counts = cache.get_many([_key(kind, value) for kind, value in subjects])
    for kind, value in subjects:
        if (counts.get(_key(kind, value)) or 0) >= LIMITS[kind]:
            raise LockedError(_locked_until(kind, value))
    return counts


def _locked_until(kind: str, value: str):
    """When the lock ends at the latest: the end its row records (the count in the cache
    expires an hour after the first mismatch, so no later than that)."""
    lock = (
        InputLock.objects.filter(kind=kind, value=value, lifted_at__isnull=True)
        .order_by("-locked_until")
        .first()
    )
    return lock.locked_until if lock else timezone.now() + timedelta(seconds=WINDOW_SECONDS)


def record_mismatch(kihonet_code: str, ip_address: str | None) -> None:
    for kind, value in _subjects(kihonet_code, ip_address):
        key = _key(kind, value)
        cache.add(key, 0, WINDOW_SECONDS)
        if cache.incr(key) == LIMITS[kind]:
            _write_lock(kind, value)


def forget_mismatches(kihonet_code: str, counts: dict[str, int] | None = None) -> None:
    """A successful match clears the count of its 企保ネットコード (not of the address).

    ``counts`` from check_not_locked saves the round trip when there is nothing to clear."""
    key = _key(InputLock.Kind.KIHONET_CODE, kihonet_code)
    if counts is None or counts.get(key):
        cache.delete(key)


def _write_lock(kind: str, value: str) -> None:
    lock = InputLock.objects.create(
        kind=kind, value=value, locked_until=timezone.now() + timedelta(seconds=WINDOW_SECONDS)
    )
    audit.record(
        audit.Actor.system("lockout"), "input_locked", lock, detail={"kind": kind, "value": value}
    )


@transaction.atomic
def lift_lock(lock: InputLock, *, actor: audit.Actor, reason: str = "") -> InputLock:
    cache.delete(_key(lock.kind, lock.value))
    lock.lifted_at = timezone.now()
    lock.lifted_by = actor.staff
    lock.save(update_fields=["lifted_at", "lifted_by"])
    audit.record(
        actor,
        "input_lock_lifted",
        lock,
        reason=reason,
        detail={"kind": lock.kind, "value": lock.value},
    )
    return lock
