"""Lockouts under bursts (R03): every try is counted before it is evaluated, atomically, so no
more wrong tries than the limit are ever evaluated, whatever arrives at once, in threads of a
live server or in separate processes; and the InputLock row is the lock that is enforced."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.contrib.auth.signals import user_login_failed
from django.core.cache import caches
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test import override_settings
from django.test.testcases import LiveServerThread, _StaticFilesHandler
from django.urls import reverse

from issuance import attempts
from issuance.errors import InputMismatchError, LockedError
from issuance.models import Enrollment, InputLock
from issuance.services import enrollment
from tests.factories import enrollment_fields, make_customer, make_notice, make_user
from tests.issuance.services.test_enrollment import lock_out, run_together, start

BASE_DIR = Path(__file__).resolve().parents[2]
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


class _WideBacklogServer(ThreadedWSGIServer):
    request_queue_size = 128  # 40 connections at once, none reset by a full backlog


class _BurstServerThread(LiveServerThread):
    server_class = _WideBacklogServer


@pytest.fixture
def burst_server(transactional_db, postgres, redis_cache):
    """A live server (a thread per request, as pytest-django's) taking 40 connections at once."""
    thread = _BurstServerThread("127.0.0.1", _StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


def post_enrollment(url: str, fields: dict):
    def call():
        response = requests.post(f"{url}/api/v1/enrollments", json=fields, timeout=60)
        return response.status_code, response.json()

    return call


def status_codes(results) -> Counter:
    assert not [r for r in results if isinstance(r, Exception)], results
    return Counter(body.get("status_code", str(status)) for status, body in results)


# --- Real parallel requests against a live server (PostgreSQL, Redis) ---------------------------

pytestmark = pytest.mark.django_db


@pytest.mark.slow
@pytest.mark.redis
def test_r03_a_burst_against_one_person_evaluates_no_more_wrong_tries_than_the_limit(
    burst_server, settings
):
    """40 parallel tries, one of them right: at most 5 wrong ones are compared, the right one
    only if it came within the limit, and the person is locked once, after 5 misses."""
    limit = settings.KIHONET_INPUT_LOCK_MAX_FAILURES
    for burst in range(3):
        notice = make_notice()
        wrong = enrollment_fields(notice, management_number="ZZ99999999")
        calls = [post_enrollment(burst_server, wrong) for _ in range(39)]
        calls.insert(17 + burst, post_enrollment(burst_server, enrollment_fields(notice)))
        counts = status_codes(run_together(*calls))
        evaluated_wrong, accepted = counts["3420"], counts["201"]
        assert evaluated_wrong <= limit, counts
        assert accepted <= 1 and evaluated_wrong + accepted + counts["3430"] == 40, counts
        assert Enrollment.objects.filter(notice=notice).count() == accepted
        if accepted == 0:
            assert evaluated_wrong == limit, counts
        locks = InputLock.objects.filter(kind="person", user_id=notice.user.user_id)
        assert locks.count() == (1 if evaluated_wrong == limit else 0)
        status, body = post_enrollment(burst_server, wrong)()
        if evaluated_wrong == limit:
            assert (status, body["status_code"]) == (429, "3430")
        caches["default"].clear()  # the address's count: the next burst starts afresh


@pytest.mark.slow
@pytest.mark.redis
def test_r03_a_burst_from_one_address_evaluates_no_more_than_its_limit(burst_server, settings):
    limit = settings.KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES
    wrong = [
        {
            "kihonet_code": f"{41000000 + n:08d}",
            "management_number": "ZZ99999999",
            "user_id": "ZZ99999",
            "year": "2026",
            "branch_number": "001",
            "email": "x@example.jp",
        }
        for n in range(40)
    ]
    counts = status_codes(run_together(*[post_enrollment(burst_server, f) for f in wrong]))
    assert counts == {"3420": limit, "3430": 40 - limit}, counts
    assert InputLock.objects.filter(kind="ip_address", value="127.0.0.1").count() == 1


@pytest.mark.slow
@pytest.mark.redis
def test_a_burst_of_wrong_staff_passwords_checks_no_more_than_the_limit(burst_server, settings):
    from tests.backoffice.helpers import make_staff

    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    staff = make_staff(username="clerk_burst")
    limit = settings.KIHONET_STAFF_LOGIN_MAX_FAILURES
    checked = []

    def count_check(sender, credentials, **kwargs):
        checked.append(credentials.get("username"))

    login = f"{burst_server}{reverse('admin:login')}"

    def prepared():
        session = requests.Session()
        session.get(login, timeout=60)  # the CSRF cookie
        token = session.cookies["csrftoken"]

        def call():
            response = session.post(
                login,
                data={
                    "csrfmiddlewaretoken": token,
                    "username": staff.username,
                    "password": "wrong password",
                    "otp_token": "123456",
                },
                headers={"Referer": login},
                timeout=60,
            )
            return response.status_code, response.text

        return call

    calls = [prepared() for _ in range(24)]
    user_login_failed.connect(count_check)
    try:
        results = run_together(*calls)
    finally:
        user_login_failed.disconnect(count_check)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(checked) == limit, checked  # the password was checked five times, not more
    pages = [text for _, text in results]
    assert sum("一時的にロックされています" in page for page in pages) == 24 - (limit - 1)
    assert InputLock.objects.filter(kind="staff_login", value=staff.username).count() == 1


# --- Separate processes on one Redis ----------------------------------------------------------------

_TAKER = textwrap.dedent(
    """
    import os, sys, time
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "kihonet.settings"
    django.setup()
    from issuance import attempts

    start = float(sys.argv[1])
    while time.time() < start:
        pass
    taken = 0
    for _ in range(10):
        if attempts.take([attempts.Slot("kihonet:test:processes", 7)], 60) is not None:
            taken += 1
    print(taken)
    """
)


@pytest.mark.slow
@pytest.mark.redis
def test_the_count_holds_across_processes(redis_cache):
    """Eight processes, ten tries each, at the same moment, against a limit of 7: 7 slots."""
    caches["default"].delete("kihonet:test:processes")
    start_at = f"{time.time() + 4:.3f}"
    env = {**os.environ, "CACHE_URL": os.environ["CACHE_URL"]}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _TAKER, start_at],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    taken = [int(p.communicate(timeout=120)[0].strip()) for p in processes]
    assert sum(taken) == 7, taken
    assert attempts.value("kihonet:test:processes") == 7


# --- The local-memory cache of the embedded default ------------------------------------------------


@override_settings(CACHES=LOCMEM)
def test_the_count_holds_under_threads_on_the_local_memory_cache():
    results = run_together(
        *[lambda: attempts.take([attempts.Slot("kihonet:test:threads", 5)], 60)] * 30
    )
    assert sorted(r[0] for r in results if r is not None) == [1, 2, 3, 4, 5]
    attempts.release("kihonet:test:threads")
    assert attempts.value("kihonet:test:threads") == 4


@override_settings(CACHES=LOCMEM)
def test_r03_the_lockout_works_on_the_local_memory_cache():
    notice = make_notice()
    lock_out(notice)
    assert InputLock.objects.get().kind == "person"


# --- One source of truth: the InputLock row -------------------------------------------------------


def _lock_out(notice) -> InputLock:
    for _ in range(5):
        with pytest.raises(InputMismatchError):
            start(notice, year="1999")
    return InputLock.objects.get(kind="person", user_id=notice.user.user_id)


def test_r03_the_lock_ends_when_its_row_says_not_when_the_count_window_does(settings):
    settings.KIHONET_INPUT_LOCK_WINDOW_SECONDS = 3600
    settings.KIHONET_INPUT_LOCK_SECONDS = 2
    notice = make_notice()
    lock = _lock_out(notice)
    with pytest.raises(LockedError) as refused:
        start(notice)
    assert refused.value.locked_until == lock.locked_until
    while lock.is_active():
        time.sleep(0.1)
    assert start(notice)  # the row has ended: so has the lock, though the window has not


def test_r03_the_lock_holds_while_its_row_is_active_though_the_count_expired(settings):
    settings.KIHONET_INPUT_LOCK_WINDOW_SECONDS = 1
    settings.KIHONET_INPUT_LOCK_SECONDS = 3600
    notice = make_notice()
    lock = _lock_out(notice)
    time.sleep(1.5)
    assert lock.is_active()
    with pytest.raises(LockedError):
        start(notice)
    caches["default"].clear()  # even with the count lost
    with pytest.raises(LockedError):
        start(notice)


@pytest.mark.redis
def test_r03_the_count_is_kept_no_longer_than_the_lock(redis_cache, settings):
    settings.KIHONET_INPUT_LOCK_SECONDS = 600
    notice = make_notice()
    lock = _lock_out(notice)
    from issuance.services import lockout

    key = caches["default"].make_and_validate_key(
        lockout.counter_key("person", lock.value, lock.user_id)
    )
    ttl = caches["default"]._cache.get_client().ttl(key)
    assert 590 <= ttl <= 600


def test_r03_a_lock_of_one_person_leaves_the_others_of_the_company(settings):
    customer = make_customer()
    victim, colleague = make_notice(make_user(customer)), make_notice(make_user(customer))
    _lock_out(victim)
    assert start(colleague)
    assert enrollment.start_enrollment(
        enrollment.NoticeFields(**enrollment_fields(colleague)), ip_address="203.0.113.5"
    )


@pytest.mark.django_db
def test_r03_a_lock_is_written_once_however_many_tries_fill_the_counter():
    """In a burst, a right try gives its slot back and a later wrong one fills the counter
    again while the first lock is being written: the second writer keeps the first lock."""
    from issuance.models import AuditEvent
    from issuance.services.lockout import write_lock

    first = write_lock(InputLock.Kind.PERSON, "20000001", "U000001", seconds=3600, detail={})
    second = write_lock(InputLock.Kind.PERSON, "20000001", "U000001", seconds=3600, detail={})
    assert second.pk == first.pk
    assert InputLock.objects.filter(kind="person", user_id="U000001").count() == 1
    assert AuditEvent.objects.filter(action="input_locked").count() == 1
