"""The desk's screens in headless Chromium at 1280 px (a desk PC) and 375 px (a phone), as a
clerk uses them all day: what fits, what overlaps, what the header says, and axe-core's WCAG
2.0/2.1 A and AA rules with 0 violations on the main screens (sign-in, dashboard, user list and
search, user screen, reissue, revoke). Screenshots go to artifacts/screenshots/backoffice-*."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from issuance import audit, roles
from issuance.models import AuditEvent, InputLock
from tests.backoffice.axe import assert_accessible
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import PASSWORD, current_code, make_staff
from tests.backoffice.test_browser_desk import reference_data  # noqa: F401  (a fixture)
from tests.conftest import SCREENSHOTS, TIMEOUT_MS
from tests.factories import make_customer, make_notice, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESK_PC = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def open_page(browser, viewport: dict):
    phone = viewport["width"] < 500
    context = browser.new_context(
        viewport=viewport,
        locale="ja-JP",
        timezone_id="Asia/Tokyo",
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=str(SCREENSHOTS / f"backoffice-{name}-{width}.png"), full_page=True)


def sign_in(page, url: str, staff) -> None:
    page.goto(f"{url}/admin/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", current_code(staff))
    page.click("input[type=submit]")
    page.wait_for_selector("#kn-search-q")


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def assert_fits(page, selector: str, *columns: str) -> None:
    """The list shows every column (or at least ``columns``, when its last ones scroll inside
    the list) without the page scrolling sideways."""
    assert page_width(page) <= page.viewport_size["width"], selector
    if not columns:
        inner = page.eval_on_selector(selector, "e => [e.scrollWidth, e.clientWidth]")
        assert inner[0] <= inner[1] + 1, (selector, inner)
        return
    edge = box(page, selector)
    for column in columns:
        cell = box(page, f"#result_list thead th.column-{column}")
        assert cell["x"] + cell["width"] <= edge["x"] + edge["width"] + 1, column


@pytest.fixture
def desk_day(reference_data, settings, live_server):  # noqa: F811  (the imported fixture)
    """A supervisor entered as 「山田 花子」, the customer 「デモ商事株式会社」 whose user's
    certificate is in its renewal window, an older one revoked as superseded, and the desk's
    certificates over the next three years, one issued today."""
    settings.KIHONET_BASE_URL = live_server.url
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    customer = make_customer(
        product_lines=("総合福祉団体定期保険",), started_using=True, name="デモ商事株式会社"
    )
    user = make_user(customer, email="tanaka.ichiro@demo-shoji.example.jp")
    make_notice(user, used_at=timezone.now() - timedelta(days=1000))
    current = make_certificate(user, days_left=12)
    old = make_certificate(
        user,
        days_left=300,
        revoked_at=timezone.now() - timedelta(days=400),
        revocation_reason="superseded",
    )
    system = audit.Actor.system("enrollment")
    for certificate in (old, current):
        audit.record(
            system,
            "certificate_issued",
            certificate,
            kihonet_user=user,
            detail={"serial": certificate.serial, "not_after": certificate.not_after.isoformat()},
        )
    neighbour = make_user(
        make_customer(product_lines=("総合福祉団体定期保険",), started_using=True)
    )
    for n in range(60):
        make_certificate(neighbour, days_left=3 + (n * n * 7) % 1080)
    make_certificate(neighbour, days_left=1095)  # issued today: the chart's last month
    from notifications.models import ExpiryReminder

    ExpiryReminder.objects.create(
        certificate=current,
        stage=30,
        status="failed",
        email=current.email,
        message_id="<reminder-30@example.jp>",
        attempts=8,
        last_error="SMTPRecipientsRefused: 550 5.1.1 <tanaka.ichiro@demo-shoji.example.jp>: "
        "Recipient address rejected: User unknown in virtual mailbox table",
    )
    InputLock.objects.create(
        kind="kihonet_code",
        value=customer.kihonet_code,
        locked_until=timezone.now() + timedelta(minutes=30),
    )
    supervisor = make_staff(
        roles.SUPERVISOR, username="yamada.hanako", last_name="山田", first_name="花子"
    )
    return live_server.url, supervisor, user, current


def test_the_desk_screens_fit_read_in_japanese_and_pass_axe_at_1280(browser, desk_day):
    url, supervisor, user, current = desk_day
    page = open_page(browser, DESK_PC)

    page.goto(f"{url}/admin/")
    assert_accessible(page, "sign-in")
    shot(page, "10-sign-in")
    sign_in(page, url, supervisor)

    # the header greets by the name as entered, not upper-cased
    welcome = page.locator("#user-tools .kn-welcome")
    assert "山田 花子" in welcome.inner_text()
    assert page.eval_on_selector("#user-tools", "e => getComputedStyle(e).textTransform") == "none"
    # the chart: this month and the next 36 (today's certificate included), no year over another
    assert page.locator("svg.kn-chart g.kn-col").count() == 37
    labels = page.locator("svg.kn-chart .kn-year")
    years = [labels.nth(i).bounding_box() for i in range(labels.count())]
    assert len(years) >= 3
    for first, second in itertools.pairwise(years):
        assert not overlaps(first, second)
    assert_accessible(page, "dashboard")
    shot(page, "11-dashboard")

    # the dashboard's search box: a part of the company name
    page.fill("#kn-search-q", "デモ商事")
    page.press("#kn-search-q", "Enter")
    page.wait_for_selector("#result_list")
    assert user.user_id in page.inner_text("#result_list")
    assert_fits(page, "#changelist .results")
    assert_accessible(page, "user list, searched")
    shot(page, "12-user-search")

    # full-width, lower case, a part: the same user
    page.fill("#searchbar", "ｄｅｍｏ－ｓｈｏｊｉ")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert user.user_id in page.inner_text("#result_list")

    page.click(f"#result_list a:text('{user.user_id}')")
    page.wait_for_selector("#kn-certificates")
    certificates = page.inner_text("#kn-certificates")
    assert "再発行・更新による置き換え" in certificates and "superseded" not in certificates
    assert page.locator("#kn-audit").inner_text().count("証明書の発行") == 2
    assert "certificate_issued" not in page.inner_text("#kn-audit")
    # 「履歴」 sits in the action bar, over no table; no form fields repeated below the panels
    history = box(page, "#kn-history")
    for index in range(page.locator(".kn-section table").count()):
        table = page.locator(".kn-section table").nth(index).bounding_box()
        assert not overlaps(history, table)
    assert page.locator(".field-user_id").count() == 0
    assert page.locator(".object-tools").count() == 0
    assert_accessible(page, "user screen")
    shot(page, "13-user-screen")

    # resend (the renewal window is open): the mail is at once under 更新案内メール
    page.click("#kn-certificates a:text('更新案内を再送')")
    page.fill("textarea[name=reason]", "メールが見当たらないとのお電話")
    page.click("#kn-action-form input[type=submit]")
    page.wait_for_selector("#kn-reminders")
    reminders = page.inner_text("#kn-reminders")
    assert reminders.index("窓口から再送") < reminders.index("送信失敗")  # newest first
    assert "窓口から再送" in reminders and "送信済み" in reminders and current.serial in reminders
    shot(page, "14-user-screen-after-resend")

    page.click("#kn-history")
    page.wait_for_selector("#result_list")
    trail = page.inner_text("#result_list")
    assert "更新案内メールの再送" in trail and "証明書の発行" in trail
    assert "{" not in trail  # details in words, not JSON
    shot(page, "15-audit-trail-of-the-user")
    assert_fits(page, "#changelist .results", "when", "ip_address", "reason")
    page.click("#result_list tbody tr:first-child th a, #result_list tbody tr:first-child td a")
    page.wait_for_selector(".kn-detail")
    assert "案内の種類" in page.inner_text(".kn-detail") and "{" not in page.inner_text("#content")
    shot(page, "16-audit-event")

    page.goto(f"{url}/admin/issuance/certificate/")
    assert_fits(page, "#changelist .results")
    shot(page, "17-certificate-list")
    # the other lists: expiry, e-mail, IP address, reason and error stay on the screen
    for name, path, columns in (
        ("21-reminder-list", "notifications/expiryreminder", ("email", "last_error")),
        ("22-enrollment-list", "issuance/enrollment", ("email", "expires_at")),
        ("23-input-lock-list", "issuance/inputlock", ("target", "period")),
        ("24-reissue-list", "issuance/reissuerecord", ("reason", "created_at")),
        ("25-notice-list", "issuance/notice", ("issued_on", "used_at")),
        ("26-customer-list", "issuance/customer", ("name", "created_at")),
    ):
        page.goto(f"{url}/admin/{path}/")
        page.wait_for_selector("#changelist")
        shot(page, name)
        if page.locator("#result_list").count():
            assert_fits(page, "#changelist .results", *columns)
        else:
            assert page_width(page) <= DESK_PC["width"], name

    # reissue: the form, then what happens to the current certificate
    page.goto(f"{url}/admin/issuance/kihonetuser/{user.pk}/reissue/")
    assert page.locator("input[name=reason]:checked").count() == 0
    assert_accessible(page, "reissue")
    shot(page, "18-reissue-form")
    page.check("input[name=reason][value=pc_change]")
    page.click("#kn-action-form input[type=submit]")
    page.wait_for_selector("#kn-reissue-preview")
    preview = page.inner_text("#kn-reissue-preview")
    assert current.serial in preview and "取得した時点で失効します" in preview
    assert_accessible(page, "reissue confirmation")
    shot(page, "19-reissue-confirm")

    # revoke: no reason chosen in advance, each explained
    page.goto(f"{url}/admin/issuance/kihonetuser/{user.pk}/certificates/{current.pk}/revoke/")
    assert page.locator("input[name=reason]").count() == 5
    assert page.locator("input[name=reason]:checked").count() == 0
    assert "パソコンの紛失・盗難" in page.inner_text("#kn-action-form")
    assert_accessible(page, "revoke")
    shot(page, "20-revoke-form")
    page.context.close()
    assert AuditEvent.objects.filter(action="reminder_resent").count() == 1


def test_the_user_screen_and_the_actions_work_on_a_375_px_phone(browser, desk_day):
    url, supervisor, user, current = desk_day
    page = open_page(browser, PHONE)
    sign_in(page, url, supervisor)
    assert page_width(page) <= PHONE["width"]  # the chart scrolls inside its frame
    assert_accessible(page, "dashboard on a phone")
    shot(page, "11-dashboard")
    page.goto(f"{url}/admin/issuance/kihonetuser/{user.pk}/change/")
    page.wait_for_selector("#kn-certificates")
    assert page_width(page) <= PHONE["width"]  # the tables scroll inside their panels
    assert_accessible(page, "user screen on a phone")
    assert box(page, "#kn-reissue")["x"] + box(page, "#kn-reissue")["width"] <= PHONE["width"]
    shot(page, "13-user-screen")
    page.click("#kn-reissue")
    page.check("input[name=reason][value=pc_lost]")
    page.click("#kn-action-form input[type=submit]")
    page.wait_for_selector("#kn-reissue-preview")
    assert "ただちに失効します" in page.inner_text("#kn-reissue-preview")
    assert page_width(page) <= PHONE["width"]
    shot(page, "19-reissue-confirm")
    page.goto(f"{url}/admin/issuance/kihonetuser/{user.pk}/certificates/{current.pk}/revoke/")
    assert page_width(page) <= PHONE["width"]
    shot(page, "20-revoke-form")
    page.context.close()
