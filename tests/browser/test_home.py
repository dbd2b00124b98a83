"""The home page (step ②) on a phone: the contact table of the manual, readable (R13, R15)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CONTACTS = Path(__file__).resolve().parents[1] / "data" / "contacts.csv"
HOURS = "受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）"


def test_r13_r15_home_page_on_a_phone_shows_the_contact_table(
    site, client_tool, phone_page, screenshot
):
    """R15: both contact sections, every desk and phone of ``contacts.csv`` on its product
    line's row, and the hours, on a 375 px wide phone without sideways scrolling; R13: the
    running client tool is reported."""
    page = phone_page
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    expect(page.locator("#agent-status")).to_contain_text("受付を開始しました。")

    section = page.locator("section[aria-labelledby=contacts-title]")
    expect(section.get_by_role("heading", name="お問合せ先")).to_be_visible()
    expect(section).to_contain_text("企保ネット導入サポートセンター 0120-150-012")
    expect(section).to_contain_text(HOURS)

    with CONTACTS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = section.locator("table.contact-table")
    lines = list(dict.fromkeys(r["product_line"] for r in rows))
    expect(table.locator("tbody tr")).to_have_count(len(lines))
    for row in rows:
        line = table.locator("tbody tr").filter(
            has=page.get_by_role("cell", name=row["product_line"], exact=True)
        )
        expect(line).to_have_count(1)
        expect(line).to_contain_text(f"{row['desk']} {row['phone']}")

    # Readable on the phone: nothing wider than the screen, the table included.
    widths = page.evaluate("""() => {
        const table = document.querySelector('table.contact-table');
        return {page: document.documentElement.scrollWidth, viewport: window.innerWidth,
                table: table.getBoundingClientRect().right,
                wrapper: table.parentElement.getBoundingClientRect().right};
    }""")
    assert widths["page"] <= widths["viewport"], widths
    assert widths["table"] <= widths["wrapper"] + 0.5, widths
    # …and no phone number split over two lines.
    split = page.evaluate("""() => [...document.querySelectorAll('.phone')]
        .filter(e => e.getClientRects().length !== 1).map(e => e.textContent)""")
    assert page.locator(".phone").count() == len(rows) + 1
    assert split == []
    screenshot(page, "01-home-phone")
