"""Renewal (更新) in headless Chromium, the renewal chapter's steps ⑤ to ⑧, with the real client
tool proving it holds the current key (R09, R12)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from cryptography import x509
from django.utils import timezone
from playwright.sync_api import expect

from issuance import audit
from issuance.client_tool.kihonet_agent import AgentStore
from issuance.models import Certificate
from issuance.pki.profile import add_years
from issuance.rules.renewal import is_in_renewal_window
from issuance.services.certificates import issue_certificate
from tests.csr import make_csr
from tests.factories import make_customer, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

ACTOR = audit.Actor.system("browser-test")


def japanese_date(moment) -> str:
    local = timezone.localtime(moment)
    return f"{local.year}年{local.month}月{local.day}日"


def held_by_the_tool(
    site, client_tool, user, *, expires_in: timedelta, utc_hour: int | None = None
) -> Certificate:
    """A certificate issued three years ago less ``expires_in`` (at ``utc_hour`` that day),
    key and chain in the tool's store as if the tool had acquired it then."""
    key, csr = make_csr()
    issued_at = add_years(timezone.now(), -3) + expires_in
    if utc_hour is not None:
        issued_at = issued_at.astimezone(UTC).replace(
            hour=utc_hour, minute=0, second=0, microsecond=0
        )
    certificate = issue_certificate(user=user, csr_data=csr, actor=ACTOR, now=issued_at)
    parsed = x509.load_pem_x509_certificate(certificate.pem.encode())
    chain = [site.ca.issuing_cert, site.ca.root_cert]
    AgentStore(client_tool.store, client_tool.passphrase).install(key, parsed, chain)
    return certificate


def test_r09_r12_renewal_in_chromium_with_two_certificates(site, client_tool, page, screenshot):
    """R12: with two kihonet certificates on the PC the user chooses the one showing the right
    ユーザーID and 管理番号, presses OK and sees 「クライアント証明書の更新が完了しました」.
    R09: the certificate 10 days before expiry is renewable; the new one has the same subject
    and e-mail, a new key, three years, and points back to the old one."""
    customer = make_customer(product_lines=("団体信用生命保険",), started_using=True)
    taro = make_user(
        customer, user_id="KN01234", management_number="AB12345678", email="taro.yamada@example.jp"
    )
    hanako = make_user(
        customer,
        user_id="KN05678",
        management_number="CD87654321",
        email="hanako.suzuki@example.jp",
    )
    # It expires at 20:00 UTC, i.e. 05:00 the next day in Japan: the page shows the JST date.
    old = held_by_the_tool(site, client_tool, taro, expires_in=timedelta(days=10), utc_hour=20)
    assert timezone.localdate(old.not_after) != old.not_after.astimezone(UTC).date()
    # The other one expires first, so the tool lists it first and it is the one pre-selected:
    # choosing Taro's is a real choice.
    other = held_by_the_tool(site, client_tool, hanako, expires_in=timedelta(days=5))
    assert is_in_renewal_window(old, timezone.now())

    # ⑤ from the home page to the renewal page.
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    page.get_by_role("link", name="クライアント証明書の更新").click()
    page.wait_for_url(site("/renew/"))
    expect(page.locator("#renew-start")).to_contain_text("[更新]をクリックしてください。")
    screenshot(page, "01-renew")

    # ⑥ 「更新」 → ⑦ the choice: both certificates with their user ID and management number.
    page.get_by_role("button", name="更新", exact=True).click()
    choice = page.locator("#renew-choice")
    expect(choice).to_be_visible()
    options = page.locator("#renew-options label")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_contain_text("ユーザーID：KN05678")
    expect(options.nth(0)).to_contain_text("管理番号：CD87654321")
    expect(options.nth(1)).to_contain_text("ユーザーID：KN01234")
    expect(options.nth(1)).to_contain_text("管理番号：AB12345678")
    expect(options.nth(1)).to_contain_text(f"有効期限：{japanese_date(old.not_after)}")
    expect(options.nth(0)).to_contain_text(f"有効期限：{japanese_date(other.not_after)}")
    assert "期限切れ" not in choice.inner_text()
    expect(options.nth(0).locator("input")).to_be_checked()
    screenshot(page, "02-choice")

    options.filter(has_text="ユーザーID：KN01234").click()
    expect(options.nth(1).locator("input")).to_be_checked()
    expect(options.nth(0).locator("input")).not_to_be_checked()
    screenshot(page, "03-chosen")
    choice.get_by_role("button", name="OK").click()

    # ⑧ completion with the new expiry.
    page.wait_for_url(site("/renew/complete/?serial=*"))
    main = page.locator("main")
    expect(
        main.get_by_role("heading", name="クライアント証明書の更新が完了しました")
    ).to_be_visible()
    screenshot(page, "04-complete")

    serial = page.locator("#serial").inner_text().strip()
    new = Certificate.objects.get(serial=serial)
    assert new.renewed_from_id == old.pk
    assert new.user_id == taro.pk
    assert new.subject == old.subject and "KN01234 AB12345678" in new.subject
    assert new.email == old.email == "taro.yamada@example.jp"
    assert new.public_key_fingerprint != old.public_key_fingerprint
    assert abs(new.not_before - timezone.now()) < timedelta(minutes=5)
    assert new.not_after == add_years(new.not_before, 3)
    assert japanese_date(new.not_after) == japanese_date(add_years(timezone.now(), 3))
    expect(page.locator("#expiry")).to_contain_text(japanese_date(new.not_after))
    assert not Certificate.objects.filter(renewed_from=other).exists()

    # The tool now holds the new certificate beside the two it had.
    listed = client_tool.run("list")
    assert listed.returncode == 0, listed.stderr
    assert serial in listed.stdout and old.serial in listed.stdout and other.serial in listed.stdout
    assert (client_tool.store / f"{serial}.p12").is_file()
