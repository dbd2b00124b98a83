"""Staff sign-in: password and TOTP code (django-otp), a lock after 5 failures within 15 minutes
(counted in the cache), sessions that end after 30 minutes without activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from issuance import roles
from issuance.models import AuditEvent
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
    assert settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS == 15 * 60  # the cache key's timeout
    staff_login.unlock(clerk.username)  # or the cache entry expires after 15 minutes
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
