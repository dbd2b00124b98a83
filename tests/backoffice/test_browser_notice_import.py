"""A supervisor uploads the core system's Shift_JIS file in the back office, in Chromium, and
reads the per-row report; screenshots at 1280 and 375 px go to artifacts/screenshots/."""

from __future__ import annotations

import pytest
from django.db import connections

from issuance import roles
from issuance.models import AuditEvent, Customer
from tests.backoffice.helpers import PASSWORD, current_code, make_staff
from tests.backoffice.test_browser_desk import browser_page, reference_data, shot  # noqa: F401
from tests.backoffice.test_notice_import import ZERO_DROPPED, shift_jis_file
from tests.issuance.services.test_notice_import import GOOD, VENDOR_ROW

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_supervisor_uploads_the_notice_file_and_reads_the_report(
    live_server,
    reference_data,  # noqa: F811 - the fixture imported above
    settings,
    browser_page,  # noqa: F811
    tmp_path,
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    supervisor = make_staff(roles.SUPERVISOR, username="import.supervisor")
    upload = tmp_path / "notices.csv"
    upload.write_bytes(shift_jis_file([VENDOR_ROW, ZERO_DROPPED, GOOD[0]]))
    page = browser_page

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", supervisor.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", current_code(supervisor))
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/issuance/notice/")
    page.get_by_role("link", name="通知文書ファイルの取込").click()
    page.wait_for_url(f"{live_server.url}/admin/issuance/notice/import/")
    assert page.locator("h1").count() == 1
    shot(page, "import-01-form")

    page.set_input_files("#id_file", str(upload))
    page.get_by_role("button", name="取り込む").click()
    report = page.locator("#import-report")
    report.wait_for()
    assert "文字コード: Shift_JIS（CP932）" in report.inner_text()
    assert page.locator("#import-summary").inner_text() == "取込: 2件, 登録済み: 0件, エラー: 1件"
    rows = page.locator("#import-errors tbody tr")
    assert rows.count() == 1
    assert rows.nth(0).locator("td").nth(0).inner_text() == "3行目"
    assert "先頭の0が消えた可能性があります" in rows.nth(0).inner_text()
    shot(page, "import-02-report-1280")
    page.set_viewport_size({"width": 375, "height": 812})
    shot(page, "import-03-report-375")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, width

    assert Customer.objects.get(kihonet_code="30000021").name == "髙﨑商事"
    event = AuditEvent.objects.get(action="notices_imported")
    assert event.staff_id == supervisor.pk
    # The ORM ran while Playwright's loop was current: its connections are closed here, or the
    # test database cannot be dropped.
    connections.close_all()
