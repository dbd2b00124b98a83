"""R06, R14, R15: when the browser's store refuses the certificate, the completion page says so,
what to do (the administrator-rights text of R14, the retry) and whom to call (R15).

The customer's HOME is made immutable (``chattr +i``, which binds root too), so the real client
tool cannot create the NSS database there: the refusal a PC without the rights gives.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from issuance.client_tool import kihonet_agent as agent
from tests.conftest import require

from .test_acquisition import new_customer_notice
from .test_install_result import acquire_in_the_browser, nss_database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

R14_TEXT = (
    "クライアント証明書をインストールするには、パソコンの管理者権限が必要な場合があります。"
    "管理者として証明書取得クライアントツールを起動し直してください。"
)


def chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def tool_home(tmp_path):
    """A HOME in which nothing can be created (the store refuses), until the test unlocks it."""
    home = tmp_path / "home"
    home.mkdir()
    require(chattr("+i", home), "chattr +i (a file system with the immutable flag)")
    yield home
    chattr("-i", home)


def test_r06_r14_r15_completion_page_when_the_browser_store_refuses(
    site, client_tool, page, screenshots, tool_home
):
    """The certificate is made and kept by the tool, but the store refused: the page says it
    was not installed, gives the R14 text, the retry (button and command) and the desk of a
    first acquisition (企保ネット導入サポートセンター, R15); after the cause is gone the retry
    button installs it and the page names the store."""
    new_customer_notice()
    certificate = acquire_in_the_browser(page, site)

    failed = page.locator("#install-failed")
    expect(page.locator("#install-result")).to_have_attribute("data-state", "failed")
    expect(failed).to_be_visible()
    expect(failed).to_contain_text(
        "クライアント証明書をブラウザーの証明書ストアにインストールできませんでした。"
    )
    expect(page.locator("#install-admin")).to_have_text(R14_TEXT)
    expect(page.locator("#install-retry-command")).to_contain_text(f"install {certificate.serial}")
    expect(failed).to_contain_text("企保ネット導入サポートセンター 0120-150-012")
    expect(failed).to_contain_text("受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）")
    expect(page.locator("#installed")).to_be_hidden()
    expect(page.get_by_role("link", name="ログインを確認する")).to_be_visible()
    assert (client_tool.store / f"{certificate.serial}.p12").is_file()
    assert not nss_database(client_tool).exists()
    screenshots(page, "01-refused")

    # The customer fixes the cause (here: the folder is writable again) and retries.
    assert chattr("-i", tool_home)
    page.get_by_role("button", name="インストールを再試行").click()
    expect(page.locator("#install-result")).to_have_attribute("data-state", "installed")
    expect(failed).to_be_hidden()
    expect(page.locator("#installed-in li")).to_contain_text(agent.NSS_LABEL)
    assert (nss_database(client_tool) / "cert9.db").is_file()
    screenshots(page, "02-retried")
