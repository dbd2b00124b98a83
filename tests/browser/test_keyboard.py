"""The whole customer journey with the keyboard alone, in Chromium (JIS X 8341-3 / WCAG 2.1.1,
2.4.3, 2.4.7): new acquisition from the home page to its completion, then a renewal with the
choice between two certificates, never a mouse click. Every stop of the focus is visible and
shows that it has the focus; the six fields come in the manual's order (R01, R04, R06, R12)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from issuance.models import Certificate, Notice
from tests.factories import make_user

from .test_acquisition import NORMALISED, R06_DONE, new_customer_notice
from .test_renewal import held_by_the_tool

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

FOCUSED = """() => {
    const e = document.activeElement;
    const r = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    return {
        tag: e.tagName, id: e.id, name: e.name || "", type: e.type || "",
        text: (e.innerText || e.value || "").trim(), href: e.getAttribute("href") || "",
        visible: r.width > 0 && r.height > 0 && style.visibility !== "hidden",
        indicated: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    };
}"""


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def tab_to(page, wanted, limit: int = 80) -> dict:
    """Presses Tab until ``wanted(focus)``; every stop on the way must be visible and show its
    focus with an outline of 2 px at least (no invisible or unmarked focus stops)."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = focused(page)
        seen.append(focus["id"] or focus["text"][:20] or focus["tag"])
        assert focus["visible"], f"the focus is on something invisible: {focus}"
        assert focus["indicated"], f"the focus is not shown: {focus}"
        if wanted(focus):
            return focus
    pytest.fail(f"Tab never reached it; stops: {seen}")


def text_is(text: str):
    return lambda focus: focus["text"] == text


def test_the_whole_journey_with_the_keyboard_alone(site, client_tool, page, screenshot):
    notice = new_customer_notice()

    # ② the home page: the first Tab stop is the skip link, shown when focused.
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    page.keyboard.press("Tab")
    first = focused(page)
    assert first["text"] == "本文へ移動" and first["visible"], first
    screenshot(page, "01-skip-link")
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"

    # ⑤ to the form by the link 「クライアント証明書の新規取得」.
    tab_to(page, lambda f: f["tag"] == "A" and f["href"] == "/enroll/")
    screenshot(page, "02-home-new-focused")
    page.keyboard.press("Enter")
    page.wait_for_url(site("/enroll/"))

    # ⑥ the six fields in the manual's order, then OK.
    tab_to(page, lambda f: f["id"] == "id_kihonet_code")
    for name, value in NORMALISED.items():
        assert focused(page)["id"] == f"id_{name}"
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    assert focused(page)["text"] == "OK", focused(page)
    screenshot(page, "03-form-ok-focused")
    page.keyboard.press("Enter")

    # ⑦ the confirmation: OK by the keyboard (the Space bar on a button).
    page.wait_for_url(site("/enroll/confirm/"))
    expect(page.locator("#confirm-email")).to_have_text(NORMALISED["email"])
    tab_to(page, text_is("OK"))
    screenshot(page, "04-confirm-ok-focused")
    page.keyboard.press("Space")

    # ⑧ the tool makes the key and the completion shows (R06).
    page.wait_for_url(site("/enroll/complete/"))
    expect(page.get_by_role("heading", name=R06_DONE)).to_be_visible()
    assert Notice.objects.get(pk=notice.pk).is_used

    # Renewal (R12): two certificates in their window; 「更新」, the choice by the arrow keys,
    # OK, the completion.
    user = Notice.objects.get(pk=notice.pk).user
    other = make_user(user.customer, user_id="KN05678", management_number="CD87654321")
    old = held_by_the_tool(site, client_tool, user, expires_in=timedelta(days=10))
    held_by_the_tool(site, client_tool, other, expires_in=timedelta(days=5))
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    tab_to(page, lambda f: f["tag"] == "A" and f["href"] == "/renew/")
    page.keyboard.press("Enter")
    page.wait_for_url(site("/renew/"))
    tab_to(page, text_is("更新"))
    page.keyboard.press("Enter")
    expect(page.locator("#renew-choice")).to_be_visible()
    # The focus is on the pre-selected certificate (the other user's, expiring first).
    focus = focused(page)
    assert focus["type"] == "radio" and focus["indicated"], focus
    page.keyboard.press("ArrowDown")
    chosen = page.locator("#renew-options input:checked")
    expect(chosen).to_have_value(old.serial)
    screenshot(page, "05-renew-choice-by-keyboard")
    tab_to(page, text_is("OK"))
    page.keyboard.press("Enter")
    page.wait_for_url(site("/renew/complete/?serial=*"))
    expect(
        page.get_by_role("heading", name="クライアント証明書の更新が完了しました")
    ).to_be_visible()
    assert Certificate.objects.filter(renewed_from=old).count() == 1
