"""R13 in Chromium: the download page and the home page's how-to offer the file for the
visitor's system (here Linux, from Chromium's User-Agent) with its SHA-256, the command with
this site's ``--server``; without a build, the script with plain instructions."""

from __future__ import annotations

import hashlib

import pytest
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_r13_download_page_offers_the_linux_build_with_its_sha256(
    site, page, screenshots, settings, tmp_path
):
    folder = tmp_path / "built"
    folder.mkdir()
    linux = folder / "kihonet_agent-linux"
    linux.write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    windows = folder / "kihonet_agent-windows.exe"
    windows.write_bytes(b"MZ" + bytes(range(256)) * 50)
    settings.KIHONET_CLIENT_TOOL_DIR = folder

    page.goto(site("/client-tool/"))
    offer = page.locator("#tool-offer")
    expect(offer).to_have_attribute("data-system", "linux")
    expect(offer.locator("h2")).to_have_text("お使いのパソコン（Linux）用")
    expect(page.locator("#tool-filename")).to_have_text("kihonet_agent-linux")
    expect(page.locator("#tool-sha256")).to_have_text(
        hashlib.sha256(linux.read_bytes()).hexdigest()
    )
    expect(page.locator("#tool-howto")).to_contain_text(
        f"./kihonet_agent-linux serve --server {site.url}"
    )
    files = page.locator("#tool-files > li")
    expect(files).to_have_count(3)  # Windows, Linux, the script
    expect(files.filter(has_text="kihonet_agent-windows.exe")).to_contain_text(
        hashlib.sha256(windows.read_bytes()).hexdigest()
    )
    screenshots(page, "01-download-page")

    with page.expect_download() as download:
        page.locator("#tool-download").click()
    path = download.value.path()
    assert download.value.suggested_filename == "kihonet_agent-linux"
    assert (
        hashlib.sha256(open(path, "rb").read()).hexdigest()
        == hashlib.sha256(linux.read_bytes()).hexdigest()
    )


def test_r13_home_page_how_to_without_the_tool_and_without_a_build(
    site, page, screenshots, settings, tmp_path
):
    """No tool running, no build for Linux: the how-to shows the script's steps with this
    site's ``--server``."""
    settings.KIHONET_CLIENT_TOOL_DIR = tmp_path / "none-built"
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "missing")
    howto = page.locator("#agent-howto")
    expect(howto).to_be_visible()
    expect(howto).to_contain_text("python -m pip install cryptography keyring")
    expect(howto).to_contain_text(f"python kihonet_agent.py serve --server {site.url}")
    expect(page.locator("#tool-download")).to_have_attribute(
        "href", "/client-tool/kihonet_agent.py"
    )
    # The refused connection to the tool that is not running is what the page reports.
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e]
    screenshots(page, "01-home-no-tool")
