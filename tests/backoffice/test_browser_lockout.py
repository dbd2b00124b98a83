"""In headless Chromium: a clerk's sign-in is locked after five failures (one message for every
failure, the same under a full-width spelling of the name); a supervisor sees the lock on the
入力ロック list and lifts it with a reason; the clerk signs in. Screenshots at 1280 and 375 px
go to artifacts/screenshots/."""

from __future__ import annotations

import pytest

from issuance import roles
from issuance.models import AuditEvent, InputLock
from tests.backoffice.helpers import PASSWORD, current_code, desk, make_staff
from tests.backoffice.test_browser_desk import browser_page, reference_data, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, url: str, username: str, password: str, code: str) -> None:
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def test_a_supervisor_lifts_a_clerks_sign_in_lock_on_the_lock_screen(
    live_server,
    reference_data,  # noqa: F811 (the imported fixture)
    settings,
    browser_page,  # noqa: F811 (the imported fixture)
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    clerk = make_staff(roles.CLERK, desk("団体保険課"), username="dantai_clerk")
    supervisor = make_staff(roles.SUPERVISOR, username="supervisor_sato")
    page = browser_page
    url = live_server.url

    for attempt in range(4):
        sign_in(page, url, clerk.username, PASSWORD if attempt % 2 else "wrong", "000000")
        assert page.locator(".errornote").inner_text() == (
            "ユーザー名、パスワードまたは認証コードが正しくありません。"
        )
    sign_in(page, url, "ｄａｎｔａｉ＿ｃｌｅｒｋ", "wrong", "000000")  # the same account
    assert "一時的にロックされています" in page.locator(".errornote").inner_text()
    shot(page, "lock-01-sign-in-locked")
    sign_in(page, url, clerk.username, PASSWORD, current_code(clerk))
    assert "一時的にロックされています" in page.locator(".errornote").inner_text()

    page.context.clear_cookies()
    sign_in(page, url, supervisor.username, PASSWORD, current_code(supervisor))
    page.goto(f"{url}/admin/issuance/inputlock/")
    row = page.locator("#result_list tbody tr", has_text=clerk.username)
    assert "職員のサインイン" in row.inner_text() and "ロック中" in row.inner_text()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        shot(page, f"lock-02-list-{width}")
    page.set_viewport_size({"width": 1280, "height": 800})
    row.locator("a", has_text="ロック解除").click()
    page.wait_for_selector("#kn-action-form")
    assert "サインインのロックを解除します" in page.content()
    page.fill("#id_reason", "本人から電話、社員番号で本人確認済み")
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        shot(page, f"lock-03-lift-{width}")
    page.click("#kn-action-form input[type=submit]")
    page.wait_for_selector("text=ロックを解除しました。")
    lock = InputLock.objects.get(kind="staff_login", value=clerk.username)
    assert lock.lifted_by == supervisor
    assert AuditEvent.objects.filter(action="staff_login_unlocked", staff=supervisor).exists()

    page.context.clear_cookies()
    sign_in(page, url, clerk.username, PASSWORD, current_code(clerk))
    page.wait_for_selector("text=団体保険課の状況")
