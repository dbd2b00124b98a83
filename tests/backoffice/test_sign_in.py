"""Staff sign-in: password and TOTP code (django-otp), a lock after 5 failures within 15 minutes
(counted in the cache), sessions that end after 30 minutes without activity."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from issuance import audit, roles
from issuance.models import AuditEvent, InputLock
from issuance.services import staff_login
from tests.backoffice.helpers import PASSWORD, current_code, desk, make_staff, staff_client

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")


@pytest.fixture
def clerk(db, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the device's own backoff would hide our counting
    return make_staff(roles.CLERK, desk("団体保険課"))


def sign_in(client: Client, user, *, password: str = PASSWORD, code: str | None = None):
    return client.post(
        LOGIN,
        {
            "username": user.username,
            "password": password,
            "otp_token": current_code(user) if code is None else code,
            "next": INDEX,
        },
    )


def test_sign_in_with_password_and_totp_code_opens_the_dashboard(clerk):
    client = Client()
    response = sign_in(client, clerk)
    assert response.status_code == 302 and response["Location"] == INDEX
    page = client.get(INDEX)
    assert page.status_code == 200 and "団体保険課の状況" in page.content.decode()


@pytest.mark.parametrize("code", ["", "000000"])
def test_a_password_alone_or_a_wrong_code_does_not_sign_in(clerk, code):
    client = Client()
    if code == "000000" and current_code(clerk) == "000000":
        code = "111111"
    response = sign_in(client, clerk, code=code)
    assert response.status_code == 200
    assert "認証コード" in response.content.decode()
    assert client.get(INDEX).status_code == 302  # back to the sign-in page


def test_a_password_session_without_the_second_factor_is_refused(clerk):
    client = Client()
    client.force_login(clerk)
    response = client.get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_five_failures_lock_the_username_for_fifteen_minutes(clerk):
    client = Client()
    for _ in range(4):
        response = sign_in(client, clerk, password="wrong password")
        assert "ロック" not in response.content.decode()
    response = sign_in(client, clerk, password="wrong password")
    assert "一時的にロックされています" in response.content.decode()
    response = sign_in(client, clerk)  # right password and code: still locked
    assert "一時的にロックされています" in response.content.decode()
    assert client.get(INDEX).status_code == 302
    assert AuditEvent.objects.filter(action="staff_login_locked").count() == 1
    assert settings.KIHONET_STAFF_LOGIN_WINDOW_SECONDS == 15 * 60
    assert settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS == 15 * 60
    lock = InputLock.objects.get(kind="staff_login")  # what supervisors see and lift
    assert lock.value == clerk.username and lock.is_active()
    assert lock.locked_until - lock.locked_at <= timedelta(minutes=15)
    supervisor = make_staff(roles.SUPERVISOR)
    staff_login.unlock(clerk.username, actor=audit.Actor.staff_user(supervisor), reason="本人確認")
    assert sign_in(Client(), clerk).status_code == 302


def test_the_lock_counts_per_username_across_clients(clerk):
    other = make_staff(roles.CLERK, desk("団体保険課"))
    for _ in range(5):
        sign_in(Client(), clerk, password="wrong password")
    assert sign_in(Client(), other).status_code == 302
    assert "一時的にロックされています" in sign_in(Client(), clerk).content.decode()


def test_a_success_clears_the_count(clerk):
    client = Client()
    for _ in range(4):
        sign_in(client, clerk, password="wrong password")
    assert sign_in(client, clerk).status_code == 302
    for _ in range(4):
        sign_in(Client(), clerk, password="wrong password")
    assert not staff_login.is_locked(clerk.username)


def test_sessions_end_after_thirty_minutes_without_activity(clerk):
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client = staff_client(clerk)
    assert client.get(INDEX).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=20)):
        assert client.get(INDEX).status_code == 200  # activity renews the session
    with time_machine.travel(timezone.now() + timedelta(minutes=20 + 31)):
        assert client.get(INDEX).status_code == 302


# --- The lock cannot be dodged, and the page does not tell a right password from a wrong one ---


def test_a_full_width_or_mixed_width_username_is_the_same_account_with_one_count(clerk):
    """Authentication normalises the username (NFKC): ｃｌｅｒｋ＿ｘ signs in as clerk_x, so the
    lock counts and holds on that same name."""
    clerk.username = "clerk_x"
    clerk.save()
    spellings = ["clerk_x", "ｃｌｅｒｋ＿ｘ", "clerk＿x", " ｃlerk_x ", "ｃｌｅｒｋ_x"]
    for spelling in spellings:  # five failures, one per spelling: one count
        response = Client().post(
            LOGIN,
            {"username": spelling, "password": "wrong", "otp_token": "123456", "next": INDEX},
        )
        assert response.status_code == 200
    assert "一時的にロックされています" in response.content.decode()
    assert InputLock.objects.filter(kind="staff_login", value="clerk_x").count() == 1
    for spelling in spellings:  # locked under every spelling, with the right password and code
        client = Client()
        response = client.post(
            LOGIN,
            {
                "username": spelling,
                "password": PASSWORD,
                "otp_token": current_code(clerk),
                "next": INDEX,
            },
        )
        assert "一時的にロックされています" in response.content.decode(), spelling
        assert client.get(INDEX).status_code == 302


def test_a_full_width_username_signs_in_as_its_account(clerk):
    """What the test above relies on: authentication itself takes the full-width spelling."""
    clerk.username = "clerk_x"
    clerk.save()
    client = Client()
    response = client.post(
        LOGIN,
        {
            "username": "ｃｌｅｒｋ＿ｘ",
            "password": PASSWORD,
            "otp_token": current_code(clerk),
            "next": INDEX,
        },
    )
    assert response.status_code == 302 and client.get(INDEX).status_code == 200


def _page_without_csrf(response) -> str:
    html = response.content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)


def test_every_failure_shows_the_same_page_and_message(clerk):
    """A right password with a wrong code, a right password without a code, a wrong password
    with a right code: one message, and the same page (django-otp would otherwise show the
    password again once it was right)."""
    wrong_code = "000000" if current_code(clerk) != "000000" else "111111"
    cases = {
        "right password, wrong code": {"password": PASSWORD, "otp_token": wrong_code},
        "right password, empty code": {"password": PASSWORD, "otp_token": ""},
        "wrong password, right code": {"password": "wrong", "otp_token": current_code(clerk)},
        "wrong password, wrong code": {"password": "wrong", "otp_token": wrong_code},
    }
    pages = {}
    for name, fields in cases.items():
        response = Client().post(LOGIN, {"username": clerk.username, "next": INDEX, **fields})
        assert response.status_code == 200, name
        pages[name] = _page_without_csrf(response)
    assert len(set(pages.values())) == 1, pages.keys()
    page = next(iter(pages.values()))
    assert "ユーザー名、パスワードまたは認証コードが正しくありません。" in page
    assert PASSWORD not in page


def test_the_lock_message_and_the_help_use_the_configured_duration(clerk, settings):
    settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS = 30 * 60
    settings.KIHONET_STAFF_LOGIN_MAX_FAILURES = 3
    page = Client().get(LOGIN).content.decode()
    assert "3回続けて失敗すると30分間サインインできなくなります" in page
    for _ in range(3):
        response = sign_in(Client(), clerk, password="wrong password")
    html = response.content.decode()
    assert "一時的にロックされています" in html and "30分ほど" in html and "15分" not in html
    lock = InputLock.objects.get(kind="staff_login")
    assert timedelta(minutes=29) < lock.locked_until - lock.locked_at <= timedelta(minutes=30)


def test_the_lock_ends_when_its_row_says_and_lifting_the_row_lifts_it(clerk, settings):
    """One source of truth: the InputLock row. Its end is the lock's end, and it is checked
    before the count (an expired row opens, a lifted one too, a row still active holds even
    when the count behind it is gone)."""
    for _ in range(5):
        sign_in(Client(), clerk, password="wrong password")
    lock = InputLock.objects.get(kind="staff_login")
    with time_machine.travel(lock.locked_until - timedelta(seconds=1)):
        assert staff_login.is_locked(clerk.username)
    with time_machine.travel(lock.locked_until + timedelta(seconds=1)):
        assert not staff_login.is_locked(clerk.username)
    from django.core.cache import cache

    cache.clear()  # the count lost (a cache restart): the row still locks
    assert "一時的にロックされています" in sign_in(Client(), clerk).content.decode()
    lock.lifted_at = timezone.now()
    lock.save()
    assert sign_in(Client(), clerk).status_code == 302


def test_a_supervisor_lifts_a_staff_login_lock_on_the_lock_screen_audited(clerk):
    for _ in range(5):
        sign_in(Client(), clerk, password="wrong password")
    lock = InputLock.objects.get(kind="staff_login")
    supervisor = make_staff(roles.SUPERVISOR)
    client = staff_client(supervisor)
    listing = client.get(reverse("admin:issuance_inputlock_changelist"))
    html = listing.content.decode()
    assert listing.status_code == 200 and clerk.username in html and "職員のサインイン" in html
    url = reverse("admin:issuance_inputlock_lift", args=[lock.pk])
    assert url in html
    page = client.get(url)
    assert page.status_code == 200 and "サインインのロックを解除します" in page.content.decode()
    assert client.post(url, {"reason": ""}).status_code == 200  # a reason is required
    assert staff_login.is_locked(clerk.username)
    response = client.post(url, {"reason": "本人から電話、本人確認済み"}, REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 302
    lock.refresh_from_db()
    assert lock.lifted_at is not None and lock.lifted_by == supervisor
    event = AuditEvent.objects.get(action="staff_login_unlocked")
    assert (event.staff, event.reason) == (supervisor, "本人から電話、本人確認済み")
    assert event.ip_address == "192.0.2.9"
    assert sign_in(Client(), clerk).status_code == 302


def test_a_clerk_neither_sees_nor_lifts_staff_login_locks(clerk):
    other = make_staff(roles.CLERK, desk("団体保険課"))
    for _ in range(5):
        sign_in(Client(), other, password="wrong password")
    lock = InputLock.objects.get(kind="staff_login")
    client = staff_client(clerk)
    listing = client.get(reverse("admin:issuance_inputlock_changelist"))
    assert listing.status_code == 200 and other.username not in listing.content.decode()
    url = reverse("admin:issuance_inputlock_lift", args=[lock.pk])
    assert client.post(url, {"reason": "x"}).status_code == 404
    assert staff_login.is_locked(other.username)
