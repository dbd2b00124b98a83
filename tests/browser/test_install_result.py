"""The pages tell where the certificate went (R06, R12): the completion pages show the browser
store the real client tool installed into, as it reported it, and the renewal page lists the
certificates the tool holds with their status. Screenshots at 1280 and 375 px."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from issuance.client_tool import kihonet_agent as agent
from issuance.models import Certificate
from tests.factories import make_customer, make_user

from .test_acquisition import NORMALISED, R06_DONE, R06_LOGIN, fill_form, new_customer_notice
from .test_renewal import held_by_the_tool

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def acquire_in_the_browser(page, site) -> Certificate:
    """Steps ⑥ to ⑧ with the six fields of ``NORMALISED``: the tool makes the key."""
    page.goto(site("/enroll/"))
    fill_form(page, NORMALISED)
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/confirm/"))
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/complete/"))
    expect(page.locator("main")).to_contain_text(R06_LOGIN)
    return Certificate.objects.get(serial=page.locator("#serial").inner_text().strip())


def tool_answer(client_tool, site, path: str) -> dict:
    """What the tool itself answers the site's pages (``Origin`` of the site)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{client_tool.port}{path}", headers={"Origin": site.url}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read())


def nss_database(client_tool):
    return client_tool.home / ".local" / "share" / "pki" / "nssdb"


def test_r06_completion_page_shows_where_the_tool_installed_the_certificate(
    site, client_tool, page, screenshots
):
    """R06: after 「クライアント証明書の作成が完了しました」 the page names the browser store the
    tool reported (label and place) and 「ログインを確認する」 opens the login check."""
    new_customer_notice()
    certificate = acquire_in_the_browser(page, site)
    main = page.locator("main")
    expect(main.get_by_role("heading", name=R06_DONE)).to_be_visible()

    result = page.locator("#install-result")
    expect(result).to_have_attribute("data-state", "installed")
    place = page.locator("#installed-in li")
    expect(place).to_have_count(1)
    expect(place).to_have_attribute("data-store", "nss")
    expect(place).to_contain_text(agent.NSS_LABEL)
    expect(place).to_contain_text(str(nss_database(client_tool)))
    expect(page.locator("#install-failed")).to_be_hidden()
    assert (nss_database(client_tool) / "cert9.db").is_file()

    # The page shows what the tool says it holds, not a guess.
    (held,) = tool_answer(client_tool, site, "/certificates")["certificates"]
    assert held["serial"] == certificate.serial
    assert [p["label"] for p in held["installed_in"]] == [agent.NSS_LABEL]
    screenshots(page, "01-complete")

    button = page.get_by_role("link", name="ログインを確認する")
    expect(button).to_be_visible()
    button.click()
    page.wait_for_url(site("/login-check/"))
    expect(page.get_by_role("heading", name="ログインの確認")).to_be_visible()
    # Straight to the server, not through the TLS proxy: no certificate can be seen here.
    expect(page.locator("#login-result")).to_have_attribute("data-status", "untrusted")
    # That answer is a 403, which Chromium logs; it is the expected one.
    page.errors[:] = [e for e in page.errors if "status of 403" not in e]


def test_r06_login_check_button_goes_to_the_configured_login_check(
    site, client_tool, page, settings
):
    """The login check lives on its own name in production (KIHONET_LOGIN_CHECK_URL)."""
    settings.KIHONET_LOGIN_CHECK_URL = "https://login.kihonet.example.jp/login-check/"
    new_customer_notice()
    acquire_in_the_browser(page, site)
    expect(page.get_by_role("link", name="ログインを確認する")).to_have_attribute(
        "href", "https://login.kihonet.example.jp/login-check/"
    )


def test_r12_renewal_page_lists_the_tools_certificates_and_where_the_new_one_went(
    site, client_tool, page, screenshots
):
    """R12: the renewal page lists what the tool holds, each with its status and where it is
    installed; after the renewal the completion page names the store the new one went into,
    and the list shows the old one as renewed."""
    customer = make_customer(product_lines=("団体信用生命保険",), started_using=True)
    taro = make_user(customer, user_id="KN01234", management_number="AB12345678")
    hanako = make_user(customer, user_id="KN05678", management_number="CD87654321")
    old = held_by_the_tool(site, client_tool, taro, expires_in=timedelta(days=10))
    other = held_by_the_tool(site, client_tool, hanako, expires_in=timedelta(days=20))
    installed = client_tool.run("install", old.serial)
    assert installed.returncode == 0, installed.stderr

    page.goto(site("/renew/"))
    rows = page.locator("#renew-held-list > li")
    expect(rows).to_have_count(2)
    answer = {
        c["serial"]: c for c in tool_answer(client_tool, site, "/certificates")["certificates"]
    }
    labels = {
        "valid": "有効",
        "renewed": "更新済み",
        "revoked": "失効",
        "expired": "期限切れ",
        "unknown": "確認できません",
    }
    for certificate in (old, other):
        row = page.locator(f"#renew-held-list > li[data-serial='{certificate.serial}']")
        expect(row).to_have_count(1)
        status = answer[certificate.serial]["status"]
        expect(row.locator(".held-status")).to_have_text(labels[status])
        expect(row).to_contain_text(
            f"ユーザーID：{certificate.user.user_id}　管理番号：{certificate.user.management_number}"
        )
    old_row = page.locator(f"#renew-held-list > li[data-serial='{old.serial}']")
    other_row = page.locator(f"#renew-held-list > li[data-serial='{other.serial}']")
    expect(old_row.locator(".held-installed")).to_contain_text(agent.NSS_LABEL)
    expect(other_row.locator(".held-installed")).to_have_text(
        "ブラウザーの証明書ストアにはインストールされていません"
    )
    screenshots(page, "01-renew-list")

    page.get_by_role("button", name="更新", exact=True).click()
    page.locator("#renew-options label").filter(has_text="ユーザーID：KN01234").click()
    page.locator("#renew-choice").get_by_role("button", name="OK").click()
    page.wait_for_url(site("/renew/complete/?serial=*"))
    new = Certificate.objects.get(renewed_from=old)
    expect(page.locator("#serial")).to_have_text(new.serial)
    place = page.locator("#installed-in li")
    expect(place).to_have_count(1)
    expect(place).to_contain_text(agent.NSS_LABEL)
    expect(place).to_contain_text(str(nss_database(client_tool)))
    expect(page.get_by_role("link", name="ログインを確認する")).to_be_visible()
    screenshots(page, "02-renew-complete")

    # Back on the renewal page: the renewed one is marked, the new one is where the old was.
    page.goto(site("/renew/"))
    expect(rows).to_have_count(3)
    expect(old_row.locator(".held-status")).to_have_text("更新済み")
    new_row = page.locator(f"#renew-held-list > li[data-serial='{new.serial}']")
    expect(new_row.locator(".held-installed")).to_contain_text(agent.NSS_LABEL)
    expect(old_row.locator(".held-installed")).to_have_text(
        "ブラウザーの証明書ストアにはインストールされていません"
    )
    screenshots(page, "03-renew-list-after")
