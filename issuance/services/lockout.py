"""Brute force on the six fields (R03), and the lock rows that staff see and lift.

Per person (企保ネットコード and ユーザーID, as typed): after ``KIHONET_INPUT_LOCK_MAX_FAILURES``
mismatches within the window the person is locked; per address after
``KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES``. A company is never locked as a whole (anyone who
knows its 8-digit code could lock all its users out): ``KIHONET_INPUT_ALERT_COMPANY_FAILURES``
mismatches for one 企保ネットコード within the window alert the desk instead (MismatchAlert,
on the dashboard).

Every try is counted before it is evaluated (issuance.attempts: one atomic Redis script), so
that no more wrong tries than the limit are ever evaluated, however many arrive at once. The
InputLock row is the lock: it is checked first, its ``locked_until`` is when it ends (the full
counter is kept no longer), and lifting it clears the counter too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from issuance import attempts, audit
from issuance.errors import LockedError
from issuance.models import InputLock, MismatchAlert
from issuance.services.locks import lock_until_commit


def counter_key(kind: str, value: str, user_id: str = "") -> str:
    """The cache key counting the tries of one subject (a username only as its digest)."""
    if kind == InputLock.Kind.STAFF_LOGIN:
        value = hashlib.sha256(value.encode()).hexdigest()[:32]
    suffix = f":{user_id}" if user_id else ""
    return f"kihonet:attempts:{kind}:{value}{suffix}"


def _company_key(kihonet_code: str) -> str:
    return f"kihonet:attempts:company:{kihonet_code}"


def active_lock(condition: Q, now: datetime | None = None) -> InputLock | None:
    """The active lock (the one that ends last) among those ``condition`` selects."""
    return (
        InputLock.objects.filter(
            condition, lifted_at__isnull=True, locked_until__gt=now or timezone.now()
        )
        .order_by("-locked_until")
        .first()
    )


def write_lock(
    kind: str, value: str, user_id: str = "", *, seconds: int, detail: dict
) -> InputLock:
    """The lock row and its audit event in one transaction; the full counter is then kept
    until the row's end, not longer. Once only: a right try in a burst gives its slot back, so
    a later wrong one can fill the counter again while the first lock is being written; the
    second writer then finds that lock (one writer at a time per subject) and keeps it."""
    with transaction.atomic():
        lock_until_commit(counter_key(kind, value, user_id))
        existing = active_lock(Q(kind=kind, value=value, user_id=user_id))
        if existing is not None:
            attempts.hold_until(counter_key(kind, value, user_id), existing.locked_until)
            return existing
        lock = InputLock.objects.create(
            kind=kind,
            value=value,
            user_id=user_id,
            locked_until=(timezone.now() + timedelta(seconds=seconds)).replace(microsecond=0),
        )
        audit.record(
            audit.Actor.system("lockout"),
            "staff_login_locked" if kind == InputLock.Kind.STAFF_LOGIN else "input_locked",
            lock,
            detail={"kind": kind, "value": value, "user_id": user_id, **detail},
        )
    attempts.hold_until(counter_key(kind, value, user_id), lock.locked_until)
    return lock


# --- The six fields ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One try of the six fields, counted before it is evaluated."""

    kihonet_code: str
    user_id: str
    ip_address: str | None
    slots: list[tuple[str, str, attempts.Slot]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def _subjects(
    kihonet_code: str, user_id: str, ip_address: str | None
) -> list[tuple[str, str, str]]:
    subjects: list[tuple[str, str, str]] = [(InputLock.Kind.PERSON, kihonet_code, user_id)]
    if ip_address:
        subjects.append((InputLock.Kind.IP_ADDRESS, ip_address, ""))
    return subjects


def _limit(kind: str) -> int:
    if kind == InputLock.Kind.IP_ADDRESS:
        return settings.KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES
    return settings.KIHONET_INPUT_LOCK_MAX_FAILURES


def _lock_condition(subjects: list[tuple[str, str, str]]) -> Q:
    condition = Q()
    for kind, value, user_id in subjects:
        condition |= Q(kind=kind, value=value, user_id=user_id)
    return condition


def begin(kihonet_code: str, user_id: str, ip_address: str | None) -> Attempt:
    """Takes the try's slots, or raises LockedError (with the lock's end when there is one)."""
    subjects = _subjects(kihonet_code, user_id, ip_address)
    lock = active_lock(_lock_condition(subjects))
    if lock is not None:
        raise LockedError(locked_until=lock.locked_until)
    attempt = Attempt(kihonet_code, user_id, ip_address)
    attempt.slots = [
        (kind, value, attempts.Slot(counter_key(kind, value, uid), _limit(kind)))
        for kind, value, uid in subjects
    ]
    counts = attempts.take(
        [slot for _, _, slot in attempt.slots], settings.KIHONET_INPUT_LOCK_WINDOW_SECONDS
    )
    if counts is None:  # the last tries are being evaluated, or a lock was just written
        lock = active_lock(_lock_condition(subjects))
        raise LockedError(locked_until=lock.locked_until if lock else None)
    attempt.counts = counts
    return attempt


def failed(attempt: Attempt) -> None:
    """A mismatch keeps its slots; the one that fills a counter writes the lock. The company's
    count alerts the desk once per window when it reaches its threshold."""
    for (kind, value, slot), n in zip(attempt.slots, attempt.counts, strict=True):
        if n >= slot.limit:
            write_lock(
                kind,
                value,
                attempt.user_id if kind == InputLock.Kind.PERSON else "",
                seconds=settings.KIHONET_INPUT_LOCK_SECONDS,
                detail={"failures": n, "ip_address": attempt.ip_address},
            )
    company = attempts.count(
        _company_key(attempt.kihonet_code), settings.KIHONET_INPUT_LOCK_WINDOW_SECONDS
    )
    if company == settings.KIHONET_INPUT_ALERT_COMPANY_FAILURES:
        _raise_alert(attempt.kihonet_code, company)


def release(attempt: Attempt) -> None:
    """A match (or a try not evaluated) gives its slots back: only wrong tries count."""
    for _, _, slot in attempt.slots:
        attempts.release(slot.key)


@transaction.atomic
def _raise_alert(kihonet_code: str, failures: int) -> MismatchAlert:
    alert = MismatchAlert.objects.create(
        kihonet_code=kihonet_code,
        failures=failures,
        window_seconds=settings.KIHONET_INPUT_LOCK_WINDOW_SECONDS,
    )
    audit.record(
        audit.Actor.system("lockout"),
        "input_mismatch_alert",
        alert,
        detail={"kihonet_code": kihonet_code, "failures": failures},
    )
    return alert


# --- Lifting -------------------------------------------------------------------------------------


@transaction.atomic
def lift_lock(lock: InputLock, *, actor: audit.Actor, reason: str = "") -> InputLock:
    """Ends the lock now: the row (what is enforced) and the count behind it."""
    lock.lifted_at = timezone.now()
    lock.lifted_by = actor.staff
    lock.save(update_fields=["lifted_at", "lifted_by"])
    audit.record(
        actor,
        "staff_login_unlocked" if lock.kind == InputLock.Kind.STAFF_LOGIN else "input_lock_lifted",
        lock,
        reason=reason,
        detail={"kind": lock.kind, "value": lock.value, "user_id": lock.user_id},
    )
    # At once, not on commit: should the transaction roll back, the row still locks.
    attempts.clear(counter_key(lock.kind, lock.value, lock.user_id))
    return lock
