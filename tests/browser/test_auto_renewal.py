"""The completion page offers auto-renewal (issue 18, R09): it says in Japanese what the tool will
do, and pressing 「自動更新を設定する」 (the consent) has the real client tool register its daily
and at-log-on run for this user, exactly as ``auto-renew --enable`` does: here the systemd user
timer, with ``systemctl`` a recording stand-in first on the tool's PATH. 「自動更新を解除」 removes
it again and tells the server (the desk's screen: 自動更新：無効). Screenshots at 1280 and 375 px."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from playwright.sync_api import expect

from issuance import audit
from issuance.models import AuditEvent, AutoRenewal
from issuance.services import certificates
from tests.client_tool.helpers import keyring_env
from tests.client_tool.standins import SCHEDULERS, install_standins, read_log

from .test_acquisition import new_customer_notice
from .test_install_result import acquire_in_the_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

UNITS = (".config", "systemd", "user")
EXPLANATION = (
    "1日1回と、このパソコンにログオンしたときに",
    "新しいクライアント証明書をブラウザーの証明書ストアにインストールして、古いクライアント証明書を取り除きます。",
    "このパソコンにいまログオンしているユーザー（WindowsやMacのユーザー）だけです。管理者権限は必要ありません。",
    "自動更新はいつでも解除できます。",
    "auto-renew --disable",
)


@pytest.fixture
def tool_env(request, tmp_path, tool_home) -> dict[str, str]:
    """The tool on Linux with the schedulers' stand-ins first on its PATH, and a keyring (a
    scheduled run opens the store with the secret kept there) unless the test says ``False``."""
    folder = install_standins(tmp_path / "bin", SCHEDULERS)
    env = {
        "KIHONET_AGENT_PLATFORM": "linux",
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_LOG": str(tmp_path / "standin.log"),
    }
    if getattr(request, "param", True):
        env |= keyring_env(tool_home / ".local" / "share")  # the XDG data folder of its HOME
    return env


def systemctl_calls(tool_env) -> list[list[str]]:
    return [e["argv"] for e in read_log(Path(tool_env["STANDIN_LOG"])) if e["tool"] == "systemctl"]


def test_r09_the_completion_page_sets_up_auto_renewal_with_the_customers_consent(
    site, client_tool, tool_env, page, screenshots
):
    new_customer_notice()
    certificate = acquire_in_the_browser(page, site)
    section = page.locator("#auto-renewal")
    expect(section).to_have_attribute("data-state", "disabled")
    expect(section.get_by_role("heading", name="クライアント証明書の自動更新")).to_be_visible()
    for text in EXPLANATION:
        expect(section).to_contain_text(text)
    expect(page.locator("#auto-renewal-on")).to_be_hidden()
    units = client_tool.home.joinpath(*UNITS)
    assert not units.exists() and systemctl_calls(tool_env) == []  # nothing before the consent
    screenshots(page, "01-offer")

    page.get_by_role("button", name="自動更新を設定する").click()

    expect(page.locator("#auto-renewal-done")).to_have_text("自動更新を設定しました。")
    expect(section).to_have_attribute("data-state", "enabled")
    expect(page.locator("#auto-renewal-error")).to_be_hidden()
    # The signed "on" check-in was sent at once: the desk sees it on before the first run.
    assert AutoRenewal.objects.get(certificate=certificate).enabled is True
    service = (units / "kihonet-auto-renew.service").read_text()
    timer = (units / "kihonet-auto-renew.timer").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_start.removeprefix("ExecStart="))
    assert command[-6:] == [
        "auto-renew", "run", "--server", site.url, "--store", str(client_tool.store.resolve()),
    ]  # fmt: skip
    assert "OnCalendar=daily" in timer and "OnStartupSec=" in timer
    assert systemctl_calls(tool_env) == [
        ["--user", "daemon-reload"],
        ["--user", "enable", "--now", "kihonet-auto-renew.timer"],
    ]
    status = client_tool.run("auto-renew", "--status")
    assert "自動更新：有効" in status.stdout, status.stderr
    screenshots(page, "02-enabled")

    # Opened again: the page says it is on and offers 「自動更新を解除」.
    page.reload()
    expect(section).to_have_attribute("data-state", "enabled")
    expect(page.locator("#auto-renewal-on")).to_contain_text("自動更新が設定されています")
    expect(page.locator("#auto-renewal-offer")).to_be_hidden()
    page.get_by_role("button", name="自動更新を解除").click()

    expect(page.locator("#auto-renewal-done")).to_have_text("自動更新を解除しました。")
    expect(section).to_have_attribute("data-state", "disabled")
    expect(page.get_by_role("button", name="自動更新を設定する")).to_be_visible()
    assert not any(units.iterdir())
    assert ["--user", "disable", "--now", "kihonet-auto-renew.timer"] in systemctl_calls(tool_env)
    # The signed "off" check-in reached the server.
    report = AutoRenewal.objects.get(certificate=certificate)
    assert report.enabled is False
    assert AuditEvent.objects.filter(action="auto_renewal_disabled").count() == 1
    screenshots(page, "03-disabled")


def test_the_page_says_when_the_server_was_not_told_that_it_is_off(
    site, client_tool, tool_env, page, screenshots
):
    """「自動更新を解除」 removes the run here even when the server refuses the signed "off"
    check-in (the certificate was revoked meanwhile); the page then says in Japanese that the
    server was not told, and how to tell it later, instead of only 「自動更新を解除しました。」."""
    new_customer_notice()
    certificate = acquire_in_the_browser(page, site)
    section = page.locator("#auto-renewal")
    page.get_by_role("button", name="自動更新を設定する").click()
    expect(section).to_have_attribute("data-state", "enabled")
    certificates.revoke_certificate(
        certificate, reason="keyCompromise", actor=audit.Actor.system("test")
    )

    page.get_by_role("button", name="自動更新を解除").click()

    done = page.locator("#auto-renewal-done")
    expect(done).to_contain_text(
        "自動更新を解除しました。ただし、企保ネットへの通知に失敗した証明書があります。"
    )
    expect(done).to_contain_text("auto-renew --disable")
    expect(done).to_have_class(re.compile(r"\balert-warning\b"))
    expect(section).to_have_attribute("data-state", "disabled")
    expect(section).to_have_attribute("data-reported", "partly")
    assert not any(client_tool.home.joinpath(*UNITS).iterdir())  # off here all the same
    assert AutoRenewal.objects.get(certificate=certificate).enabled is True  # not told
    screenshots(page, "04-off-not-told")


@pytest.mark.parametrize("tool_env", [False], indirect=True)
def test_without_a_keyring_the_page_says_why_auto_renewal_cannot_be_set(
    site, client_tool, tool_env, page
):
    """No keyring holds the store's secret (the tool runs on the password): a scheduled run
    could not open the store, so the tool refuses before registering anything and the page
    shows why in Japanese."""
    new_customer_notice()
    acquire_in_the_browser(page, site)

    page.get_by_role("button", name="自動更新を設定する").click()

    error = page.locator("#auto-renewal-error")
    expect(error).to_contain_text("このパソコンにはキーリングが見つかりませんでした")
    expect(error).to_contain_text("agent_no_keyring")
    expect(page.locator("#auto-renewal-done")).to_be_hidden()
    expect(page.locator("#auto-renewal")).to_have_attribute("data-state", "disabled")
    assert not client_tool.home.joinpath(*UNITS).exists() and systemctl_calls(tool_env) == []
    page.errors[:] = [e for e in page.errors if "status of 409 (Conflict)" not in e]


def test_the_page_says_so_when_the_tool_was_closed(site, client_tool, page):
    """The customer closed the tool before pressing: the offer stays and the page says in
    Japanese to start the tool again; nothing is registered."""
    new_customer_notice()
    acquire_in_the_browser(page, site)
    expect(page.locator("#auto-renewal")).to_have_attribute("data-state", "disabled")
    client_tool.process.terminate()
    client_tool.process.wait(timeout=10)

    page.get_by_role("button", name="自動更新を設定する").click()

    expect(page.locator("#auto-renewal-error")).to_have_text(
        "証明書取得クライアントツールが起動していません。ツールを起動してから、もう一度クリックしてください。"
    )
    expect(page.locator("#auto-renewal-done")).to_be_hidden()
    expect(page.get_by_role("button", name="自動更新を設定する")).to_be_enabled()
    assert not client_tool.home.joinpath(*UNITS).exists()
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e]
