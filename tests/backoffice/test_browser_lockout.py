"""In headless Chromium: a clerk's sign-in is locked after five failures (one message for every
failure, the same under a full-width spelling of the name); a supervisor sees on the dashboard a
company whose user IDs someone is trying, sees the lock on the 入力ロック list and lifts it with a
reason; the clerk signs in. Screenshots at 1280 and 375 px go to artifacts/screenshots/."""

from __future__ import annotations

import pytest

from issuance import roles
from issuance.errors import InputMismatchError
from issuance.models import AuditEvent, InputLock
from issuance.services import enrollment
from tests.backoffice.helpers import PASSWORD, current_code, desk, make_staff
from tests.backoffice.test_browser_desk import browser_page, reference_data, shot  # noqa: F401
from tests.factories import make_customer

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

    settings.KIHONET_INPUT_ALERT_COMPANY_FAILURES = 3
    customer = make_customer(product_lines=("総合福祉団体定期保険",), name="デモ商事株式会社")
    for n in range(3):  # someone tries user IDs of デモ商事: its desk is alerted
        with pytest.raises(InputMismatchError):
            enrollment.start_enrollment(
                enrollment.NoticeFields(
                    customer.kihonet_code, "ZZ99999999", f"ZZ{n:05d}", "2026", "001", "x@x.jp"
                ),
                ip_address=f"203.0.113.{n + 1}",
            )

    page.context.clear_cookies()
    sign_in(page, url, supervisor.username, PASSWORD, current_code(supervisor))
    assert page.locator(".kn-card", has_text="入力ロック中").inner_text().endswith("0")  # staff's
    alert = page.locator("#kn-mismatch-alerts")
    assert "デモ商事株式会社" in alert.inner_text() and customer.kihonet_code in alert.inner_text()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"lock-00-dashboard-alert-{width}")
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
