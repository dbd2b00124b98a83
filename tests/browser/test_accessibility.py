"""Accessibility of the public pages (JIS X 8341-3:2016, level AA): axe-core with the WCAG 2.0
and 2.1 level A and AA rules on every state of every public page, at 1280 and 375 px, in
headless Chromium; 0 violations. Each state is saved as a screenshot at both widths.

axe-core comes inside axe-playwright-python (nothing is downloaded); the policy page states its
version, and the test checks that it is the one run here.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import date, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from issuance import accessibility
from issuance.models import Certificate, Notice
from tests.factories import make_customer, make_notice, make_user

from .conftest import PC_VIEWPORT, PHONE_VIEWPORT
from .test_acquisition import NORMALISED, fill_form, new_customer_notice
from .test_renewal import held_by_the_tool

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()


class AxeAudit:
    """Runs axe on a page state at both widths, saves both screenshots, and keeps every
    violation so that one run reports them all."""

    def __init__(self, screenshot) -> None:
        self.screenshot = screenshot
        self.violations: list[str] = []
        self.states: list[str] = []

    def __call__(self, page, state: str) -> None:
        self.states.append(state)
        self.check_structure(page, state)
        for width, viewport in (("1280", PC_VIEWPORT), ("375", PHONE_VIEWPORT)):
            page.set_viewport_size(viewport)
            results = AXE.run(
                page,
                options={
                    "runOnly": {"type": "tag", "values": WCAG_TAGS},
                    "resultTypes": ["violations"],
                },
            )
            for violation in results.response["violations"]:
                targets = [node["target"] for node in violation["nodes"]][:5]
                self.violations.append(
                    f"{state} @{width}: {violation['id']} ({violation['impact']}): "
                    f"{violation['help']} {targets}"
                )
            self.screenshot(page, f"{state}-{width}")
        page.set_viewport_size(PC_VIEWPORT)

    def check_structure(self, page, state: str) -> None:
        """What every public page has: one h1, the favicon, the footer's two links."""
        assert page.locator("h1").count() == 1, f"{state}: {page.locator('h1').all_inner_texts()}"
        assert page.locator("link[rel=icon]").count() >= 1, state
        footer = page.locator("footer")
        expect(footer.get_by_role("link", name="ウェブアクセシビリティ方針")).to_have_attribute(
            "href", "/accessibility/"
        )
        expect(
            footer.get_by_role("link", name="クライアント証明書新規取得・更新マニュアル")
        ).to_have_attribute("href", "/manual/")
        for link in page.locator("a.phone").all():  # every phone number can be called
            assert re.fullmatch(r"tel:\+?[0-9]+", link.get_attribute("href")), state

    def assert_clean(self) -> None:
        assert not self.violations, "axe violations:\n" + "\n".join(self.violations)


def forget_expected_errors(page, *fragments: str) -> None:
    """Chromium logs a call to a client tool that is not running, and a page served with a 4xx
    status, as failed resources: expected in these states, only these lines are dropped from
    the page's errors."""
    page.errors[:] = [e for e in page.errors if not any(f in e for f in fragments)]


@pytest.fixture
def axe_audit(screenshot):
    return AxeAudit(screenshot)


def test_axe_core_is_the_version_the_policy_states(site, page):
    page.goto(site("/accessibility/"))
    page.evaluate(AXE.axe_script)
    assert page.evaluate("axe.version") == accessibility.AXE_CORE_VERSION
    expect(page.locator("#policy-tool")).to_contain_text(
        f"axe-core {accessibility.AXE_CORE_VERSION}"
    )
    expect(page.locator("#policy-test-date")).to_have_text(
        f"{accessibility.TEST_DATE.year}年{accessibility.TEST_DATE.month}月{accessibility.TEST_DATE.day}日"
    )
    expect(page.locator("#policy-target")).to_contain_text("JIS X 8341-3:2016の適合レベルAA")
    for name, _url in accessibility.PAGES:
        expect(page.locator("#policy-pages")).to_contain_text(name)


def test_every_public_page_state_with_the_tool_has_no_axe_violations(
    site, client_tool, page, axe_audit, settings
):
    """Home with the tool, the form, its field errors, 3420, the lock (3430), the
    confirmation, issuing, its error and retry, completion, the used notice (3440), renewal
    with its choice and completion, the login check, the manual and the policy."""
    notice = new_customer_notice(product_lines=("団体信用生命保険",), started_using=False)
    other = make_notice(
        make_user(make_customer(product_lines=("(新)団体定期保険",), started_using=True))
    )

    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    axe_audit(page, "01-home-tool-ready")

    page.goto(site("/enroll/"))
    axe_audit(page, "02-form")
    page.get_by_role("button", name="OK").click()
    expect(page.locator(".invalid-feedback").first).to_be_visible()
    axe_audit(page, "03-form-field-errors")

    fill_form(page, {**NORMALISED, "user_id": "ZZ99999", "year": "2025"})
    page.get_by_role("button", name="OK").click()
    expect(page.locator("#enroll-error")).to_contain_text("ステータスコード：3420")
    axe_audit(page, "04-input-error-3420")

    locked = {
        **NORMALISED,
        "kihonet_code": other.user.customer.kihonet_code,
        "user_id": "ZZ99998",
    }
    for _ in range(6):
        fill_form(page, locked)
        page.get_by_role("button", name="OK").click()
        page.wait_for_load_state()
    expect(page.locator("#enroll-error")).to_contain_text("ステータスコード：3430")
    axe_audit(page, "05-input-lock-3430")

    fill_form(page, NORMALISED)
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/confirm/"))
    axe_audit(page, "06-confirm")

    # Issuing: the first call to the tool fails, the page shows the error (and only the error),
    # then 再試行 gets the certificate.
    page.route(f"http://127.0.0.1:{site.tool_port}/enroll", lambda route: route.abort())
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/issue/"))
    expect(page.locator("#issue-error")).to_be_visible()
    expect(page.locator("#issue-status")).to_be_hidden()  # never 「お待ちください」 beside it
    axe_audit(page, "07-issue-error")
    forget_expected_errors(page, "net::ERR_")
    page.unroute(f"http://127.0.0.1:{site.tool_port}/enroll")
    held = []
    page.route(f"http://127.0.0.1:{site.tool_port}/enroll", lambda route: held.append(route))
    page.get_by_role("button", name="再試行").click()
    expect(page.locator("#issue-status")).to_be_visible()
    expect(page.locator("#issue-error")).to_be_hidden()
    axe_audit(page, "08-issuing")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    page.wait_for_url(site("/enroll/complete/"))
    axe_audit(page, "09-complete")

    page.goto(site("/enroll/"))
    fill_form(page, NORMALISED)
    page.get_by_role("button", name="OK").click()
    expect(page.locator("#enroll-error")).to_contain_text("ステータスコード：3440")
    axe_audit(page, "10-used-notice-3440")

    page.goto(site("/enroll/issue/"))  # a page whose enrollment is gone: 409
    axe_audit(page, "11-restart")
    forget_expected_errors(page, "status of 409")

    # Renewal: two certificates in their window on the PC, the choice, the completion.
    user = Notice.objects.get(pk=notice.pk).user
    second = make_user(user.customer, user_id="KN05678", management_number="CD87654321")
    held_by_the_tool(site, client_tool, user, expires_in=timedelta(days=10))
    held_by_the_tool(site, client_tool, second, expires_in=timedelta(days=5))
    page.goto(site("/renew/"))
    axe_audit(page, "12-renew")
    page.get_by_role("button", name="更新", exact=True).click()
    expect(page.locator("#renew-choice")).to_be_visible()
    axe_audit(page, "13-renew-choice")
    page.locator("#renew-choice").get_by_role("button", name="OK").click()
    page.wait_for_url(site("/renew/complete/?serial=*"))
    axe_audit(page, "14-renew-complete")

    # The login check, as the TLS proxy passes a verified certificate.
    settings.KIHONET_TRUSTED_PROXIES = ["127.0.0.1"]
    certificate = Certificate.objects.filter(user=user, renewed_from__isnull=True).first()
    page.set_extra_http_headers(
        {
            "X-SSL-Client-Verify": "SUCCESS",
            "X-SSL-Client-Cert": urllib.parse.quote(certificate.pem),
        }
    )
    page.goto(site("/login-check/"))
    expect(page.locator("#login-result")).to_have_attribute("data-status", "ok")
    axe_audit(page, "15-login-check-ok")
    page.set_extra_http_headers({})

    page.goto(site("/manual/"))
    axe_audit(page, "16-manual")
    page.goto(site("/accessibility/"))
    axe_audit(page, "17-accessibility-policy")

    axe_audit.assert_clean()


def test_every_public_page_state_without_the_tool_has_no_axe_violations(
    site, page, axe_audit, settings
):
    """Home without the tool (how to start it), renewal's errors (no tool, renewal not yet
    offered, a tool without certificates is the same box), the login check refused."""
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "missing")
    expect(page.locator("#agent-howto")).to_be_visible()
    axe_audit(page, "01-home-no-tool")

    page.goto(site("/renew/"))
    page.get_by_role("button", name="更新", exact=True).click()
    expect(page.locator("#renew-error")).to_contain_text("起動していません")
    axe_audit(page, "02-renew-error-no-tool")

    settings.KIHONET_RENEWAL_START_DATE = date.today() + timedelta(days=30)
    page.goto(site("/renew/"))
    from issuance.rules.renewal import renewal_not_yet_offered_message

    expect(page.locator("main")).to_contain_text(renewal_not_yet_offered_message())
    axe_audit(page, "03-renew-not-offered")

    page.goto(site("/login-check/"))
    expect(page.locator("#login-result")).to_have_attribute("data-status", "untrusted")
    axe_audit(page, "04-login-check-refused")

    page.goto(site("/no-such-page/"))
    axe_audit(page, "05-not-found")

    forget_expected_errors(page, "net::ERR_", "status of 403", "status of 404")
    axe_audit.assert_clean()
