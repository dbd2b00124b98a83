"""In headless Chromium: a clerk of 団体保険課 signs in with password and TOTP code, finds a user by
ユーザーID, reissues for a PC change, prints the reissue notice (HTML and PDF); the customer then
acquires with the new branch number and the old certificate is revoked as superseded (R15, R16,
R05). Screenshots and the PDF page as PNG go to artifacts/screenshots/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone

from issuance import roles
from issuance.models import Notice
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import PASSWORD, current_code, desk, make_staff
from tests.backoffice.test_reissue import acquire
from tests.conftest import SCREENSHOTS, TIMEOUT_MS, require
from tests.factories import make_customer, make_notice, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reference_data(transactional_db):
    """The contact table, the permissions and the roles, which migrations make and an earlier
    transactional test's flush may have emptied: made again here rather than restored by
    ``serialized_rollback``, whose restore collides with the content types that a flush's
    post_migrate has already made again."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.management import create_contenttypes

    from issuance.models import ServiceDesk

    for config in apps.get_app_configs():
        create_contenttypes(config, verbosity=0)
        create_permissions(config, verbosity=0)
    if not ServiceDesk.objects.exists():
        importlib.import_module("issuance.migrations.0002_contact_table").load_contacts(apps, None)
    for role, permissions in roles.ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            [
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
                for app_label, codename in permissions
            ]
        )


@pytest.fixture
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"backoffice-{name}.png"), full_page=True)


def pdf_to_png(pdf: bytes, name: str) -> Path:
    require(shutil.which("pdftoppm") is not None, "pdftoppm (Debian package poppler-utils)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    source = SCREENSHOTS / f"backoffice-{name}.pdf"
    source.write_bytes(pdf)
    stem = SCREENSHOTS / f"backoffice-{name}"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-singlefile", str(source), str(stem)],
        check=True,
        timeout=60,
    )
    return stem.with_suffix(".png")


def test_r15_r16_r05_a_clerk_reissues_for_a_new_pc_and_the_customer_acquires(
    live_server, reference_data, settings, issuing_ca, browser_page
):
    settings.KIHONET_BASE_URL = live_server.url
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    customer = make_customer(
        product_lines=("総合福祉団体定期保険",), started_using=True, name="デモ商事株式会社"
    )
    user = make_user(customer, email="tanaka@demo-shoji.example.jp")
    old = acquire(make_notice(user, issued_on=timezone.localdate()))
    clerk = make_staff(roles.CLERK, desk("団体保険課"), username="dantai.clerk")
    neighbour = make_user(
        make_customer(product_lines=("総合福祉団体定期保険",), started_using=True)
    )
    for n in range(80):  # certificates of the desk expiring over the next three years
        make_certificate(neighbour, days_left=3 + (n * n * 7) % 1080)
    page = browser_page

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", clerk.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", current_code(clerk))
    shot(page, "01-sign-in")
    page.click("input[type=submit]")
    page.wait_for_selector("text=団体保険課の状況")
    assert page.locator("svg.kn-chart g.kn-col").count() == 37
    shot(page, "02-dashboard")

    page.goto(f"{live_server.url}/admin/issuance/kihonetuser/")
    page.fill("#searchbar", user.user_id)
    page.press("#searchbar", "Enter")
    page.click(f"#result_list a:text('{user.user_id}')")
    page.wait_for_selector("#kn-certificates")
    assert page.locator("#kn-certificates").inner_text().count("有効") >= 1
    shot(page, "03-user-screen")

    page.click("#kn-reissue")
    page.check("input[name=reason][value=pc_change]")
    page.fill("textarea[name=note]", "パソコン入れ替えのためお電話あり")
    shot(page, "04-reissue-form")
    page.click("#kn-action-form input[type=submit]")
    page.wait_for_selector("#kn-reissue-preview")  # what happens to the current certificate
    assert old.serial in page.inner_text("#kn-reissue-preview")
    page.click("#kn-action-form input[type=submit].default")
    page.wait_for_selector("h1:text('再発行完了の通知文書')")
    notice = Notice.objects.get(user=user, branch_number="002")
    assert "002" in page.inner_text(".fields")
    # styled from the static CSS (the Content-Security-Policy allows no inline style)
    assert page.eval_on_selector("h1", "e => getComputedStyle(e).borderTopStyle") == "solid"
    shot(page, "05-reissue-notice-print")
    pdf_url = page.get_attribute(".toolbar a[href$='print.pdf']", "href")
    pdf = page.request.get(f"{live_server.url}{pdf_url}")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    png = pdf_to_png(pdf.body(), "06-reissue-notice-pdf")
    assert png.stat().st_size > 20_000

    old.refresh_from_db()
    assert old.revoked_at is None  # still the customer's key until the new acquisition
    new = acquire(notice)
    old.refresh_from_db()
    assert old.is_revoked and old.revocation_reason == "superseded"
    assert new.notice_id == notice.pk and new.revoked_at is None

    page.goto(f"{live_server.url}/admin/issuance/kihonetuser/{user.pk}/change/")
    certificates = page.inner_text("#kn-certificates")
    assert "失効" in certificates and "再発行・更新による置き換え" in certificates
    assert new.serial in certificates
    shot(page, "07-user-screen-after-acquisition")
