"""Staff sign-in throttling: after ``KIHONET_STAFF_LOGIN_MAX_FAILURES`` failed sign-ins for one
username within the window, the username is locked for ``KIHONET_STAFF_LOGIN_LOCK_SECONDS``.

The username is the one authentication sees (Django's NFKC normalisation of the username field),
so ``ｃｌｅｒｋ＿ｘ`` and ``clerk_x`` are one account with one count. Every try takes its slot in
the shared cache before the password is checked (issuance.attempts), so no more tries than the
limit are ever checked, across processes. The lock is an InputLock row of kind ``staff_login``:
it is what is enforced, what supervisors see, and what they lift (audited)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from issuance import attempts, audit
from issuance.models import InputLock
from issuance.services import lockout

KIND = InputLock.Kind.STAFF_LOGIN
USERNAME_MAX_LENGTH = 150


class StaffLoginLocked(Exception):
    """The username is locked (the form shows one message, whatever the password)."""


def normalize(username: str) -> str:
    """The username as the sign-in form hands it to authentication (stripped, NFKC)."""
    return AbstractBaseUser.normalize_username((username or "").strip())[:USERNAME_MAX_LENGTH]


def _condition(username: str) -> Q:
    return Q(kind=KIND, value=username, user_id="")


def active_lock(username: str) -> InputLock | None:
    username = normalize(username)
    return lockout.active_lock(_condition(username)) if username else None


def is_locked(username: str) -> bool:
    return active_lock(username) is not None


@dataclass(frozen=True)
class SignInTry:
    username: str
    failures: int  # this try's place in the count (the limit's try may lock)


def begin(username: str) -> SignInTry | None:
    """Takes the try's slot; raises StaffLoginLocked. None when there is no username to count."""
    username = normalize(username)
    if not username:
        return None
    if lockout.active_lock(_condition(username)) is not None:
        raise StaffLoginLocked()
    slot = attempts.Slot(
        lockout.counter_key(KIND, username), settings.KIHONET_STAFF_LOGIN_MAX_FAILURES
    )
    counts = attempts.take([slot], settings.KIHONET_STAFF_LOGIN_WINDOW_SECONDS)
    if counts is None:
        raise StaffLoginLocked()
    return SignInTry(username, counts[0])


def failed(attempt: SignInTry | None, ip_address: str | None) -> bool:
    """Counts a failed sign-in (it keeps its slot); True when this failure locks the username."""
    if attempt is None or attempt.failures < settings.KIHONET_STAFF_LOGIN_MAX_FAILURES:
        return False
    lockout.write_lock(
        KIND,
        attempt.username,
        seconds=settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS,
        detail={"failures": attempt.failures, "ip_address": ip_address},
    )
    return True


def succeeded(attempt: SignInTry | None) -> None:
    """A successful sign-in clears the username's count."""
    if attempt is not None:
        attempts.clear(lockout.counter_key(KIND, attempt.username))


def unlock(username: str, *, actor: audit.Actor, reason: str) -> list[InputLock]:
    """Lifts the username's active lock (a supervisor who has confirmed the person), audited;
    the admin's lock screen does the same through desk_actions.lift_input_lock."""
    from issuance.services import desk_actions

    locks = InputLock.objects.filter(
        _condition(normalize(username)), lifted_at__isnull=True, locked_until__gt=timezone.now()
    )
    return [desk_actions.lift_input_lock(lock, reason=reason, actor=actor) for lock in locks]
