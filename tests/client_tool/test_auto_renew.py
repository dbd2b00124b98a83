"""Auto-renewal by the client tool (issue 18): ``auto-renew run`` against the running server
(renewal-info, the signed check-in, the renewal inside its window, retries, refusals, one run at
a time) and ``auto-renew --enable/--disable/--status`` with the systems' schedulers (systemd's
``systemctl``, Windows' ``schtasks``, macOS' ``launchctl``) as recording stand-ins on PATH."""

from __future__ import annotations

import os
import plistlib
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from django.utils import timezone

from issuance import audit
from issuance.client_tool import kihonet_agent as agent
from issuance.models import AuditEvent, AutoRenewal, Certificate
from issuance.services import auto_renewal, certificates
from tests.issuance.services.test_renewal import issue_old

from .helpers import (
    AGENT,
    PASSPHRASE,
    agent_env,
    call,
    file_keyring,
    free_port,
    keyring_env,
    run_agent,
    serving_agent,
)
from .standins import install_standins, read_log

FAST_RETRIES = {"KIHONET_AGENT_RETRY_BASE_SECONDS": "0.3", "KIHONET_AGENT_RETRY_ATTEMPTS": "6"}


def hold(store: Path, *, age: timedelta) -> Certificate:
    """A certificate issued ``age`` ago, kept in the tool's store as enrollment keeps it."""
    key, certificate = issue_old(issued_at=timezone.now() - age)
    agent.AgentStore(store, PASSPHRASE).install(
        key, x509.load_pem_x509_certificate(certificate.pem.encode())
    )
    return certificate


IN_WINDOW = timedelta(days=3 * 365 - 10)  # 10 days before expiry: every window has opened


def run_log(store: Path) -> list[dict]:
    return agent.read_run_log(agent.AgentStore(store))


def auto_run(server: str, store: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    return run_agent(
        "auto-renew", "run", "--server", server, "--store", str(store), *extra, store=store, **env
    )


@pytest.mark.django_db(transaction=True)
def test_r09_a_certificate_in_its_window_is_renewed_installed_and_the_old_one_removed(
    live_server, live_ca, store_dir, tmp_path
):
    old = hold(store_dir, age=IN_WINDOW)
    bin_dir = install_standins(tmp_path / "bin")
    log = tmp_path / "standin.log"
    env = {
        "KIHONET_AGENT_PLATFORM": "windows",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_LOG": str(log),
    }
    store = agent.AgentStore(store_dir, PASSPHRASE)
    store.record_installed(old.serial, agent.WindowsBackend(os.environ).targets())
    thumbprint = agent.certificate_sha1(store.load(old.serial).certificate)

    result = auto_run(live_server.url, store_dir, **env)

    assert result.returncode == 0, result.stderr
    new = Certificate.objects.get(renewed_from=old)
    assert "更新しました" in result.stdout and new.serial in result.stdout
    [entry] = run_log(store_dir)
    assert entry["result"] == "renewed" and entry["new_serial"] == new.serial
    assert entry["install_error"] is None and entry["installed_in"]
    assert store.renewed_by(old.serial) == new.serial
    assert not store.installed_in(old.serial)
    imported = [e["pkcs12"]["serial"] for e in read_log(log) if "pkcs12" in e]
    assert imported == [new.serial]
    removed = [e["argv"] for e in read_log(log) if "-delstore" in e["argv"]]
    assert removed == [["-user", "-delstore", "My", thumbprint]]
    assert AuditEvent.objects.filter(action="auto_renewal_enabled").exists()

    again = auto_run(live_server.url, store_dir, "--no-install")
    assert again.returncode == 0, again.stderr
    assert Certificate.objects.filter(renewed_from=new).count() == 0  # the new one waits
    [_first, second] = run_log(store_dir)  # the renewed one is not asked about again
    assert second["serial"] == new.serial and second["result"] == "waiting"


@pytest.mark.django_db(transaction=True)
def test_r09_before_its_window_a_certificate_waits_and_the_next_check_is_logged(
    live_server, live_ca, store_dir
):
    old = hold(store_dir, age=timedelta(days=1))

    result = auto_run(live_server.url, store_dir, "--no-install")

    assert result.returncode == 0, result.stderr
    assert "更新推奨期間の前です" in result.stdout
    assert not Certificate.objects.filter(renewed_from=old).exists()
    [entry] = run_log(store_dir)
    assert entry["result"] == "waiting"
    assert entry["next_check"] > timezone.now().isoformat()
    status = run_agent("auto-renew", "--status", "--store", str(store_dir), store=store_dir)
    assert "自動更新：無効" in status.stdout and "次回の更新確認" in status.stdout


class _Forwarder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _forward(port: int, upstream: tuple[str, int], after: float) -> Iterator[None]:
    """Nothing listens on ``port`` for ``after`` seconds, then it forwards to ``upstream``."""

    class Pipe(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(upstream) as remote:

                def copy(source: socket.socket, sink: socket.socket) -> None:
                    while data := source.recv(65536):
                        sink.sendall(data)
                    sink.shutdown(socket.SHUT_WR)

                back = threading.Thread(target=copy, args=(remote, self.request), daemon=True)
                back.start()
                copy(self.request, remote)
                back.join(timeout=30)

    servers: list[_Forwarder] = []

    def start() -> None:
        time.sleep(after)
        server = _Forwarder(("127.0.0.1", port), Pipe)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start, daemon=True).start()
    yield
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_briefly_unreachable_server_is_retried_with_back_off(live_server, live_ca, store_dir):
    old = hold(store_dir, age=IN_WINDOW)
    port = free_port()
    upstream = (live_server.thread.host, live_server.thread.port)
    forwarding = _forward(port, upstream, after=1.5)
    next(forwarding)
    try:
        started = time.monotonic()
        result = auto_run(f"http://127.0.0.1:{port}", store_dir, "--no-install", **FAST_RETRIES)
        waited = time.monotonic() - started
    finally:
        next(forwarding, None)

    assert result.returncode == 0, result.stderr
    assert waited >= 1.5  # it did not give up while the server was away
    assert Certificate.objects.filter(renewed_from=old).count() == 1
    assert run_log(store_dir)[0]["result"] == "renewed"


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_server_is_given_up_after_bounded_retries_and_logged(store_dir, ca):
    key = agent.generate_private_key()
    agent.AgentStore(store_dir, PASSPHRASE).install(key, ca.issue(key.public_key()))
    dead = f"http://127.0.0.1:{free_port()}"

    result = auto_run(dead, store_dir, "--no-install", KIHONET_AGENT_RETRY_BASE_SECONDS="0.01")

    assert result.returncode == 1
    [entry] = run_log(store_dir)
    assert entry["result"] == "failed" and entry["status_code"] == "agent_network"


@pytest.mark.django_db(transaction=True)
def test_r15_a_revoked_certificate_is_refused_and_the_desk_is_named(
    live_server, live_ca, store_dir
):
    old = hold(store_dir, age=IN_WINDOW)
    certificates.revoke_certificate(old, reason="keyCompromise", actor=audit.Actor.system("test"))

    result = auto_run(live_server.url, store_dir, "--no-install", **FAST_RETRIES)

    assert result.returncode == 1
    assert "更新できません" in result.stdout and "サービスデスク" in result.stdout
    assert not Certificate.objects.filter(renewed_from=old).exists()
    [entry] = run_log(store_dir)
    assert entry["result"] == "refused" and entry["status"] == "revoked"
    assert "action" in entry


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_renew_once(live_server, live_ca, store_dir):
    old = hold(store_dir, age=IN_WINDOW)
    argv = [sys.executable, str(AGENT), "auto-renew", "run", "--server", live_server.url]
    argv += ["--store", str(store_dir), "--no-install"]
    runs = [
        subprocess.Popen(argv, env=agent_env(store_dir), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    assert Certificate.objects.filter(renewed_from=old).count() == 1
    renewed = [e for e in run_log(store_dir) if e["result"] == "renewed"]
    assert len(renewed) == 1


def test_a_run_never_prompts_for_the_password(store_dir, ca):
    key = agent.generate_private_key()
    agent.AgentStore(store_dir, PASSPHRASE).install(key, ca.issue(key.public_key()))
    env = {k: v for k, v in agent_env(store_dir).items() if k != "KIHONET_AGENT_PASSPHRASE"}
    result = subprocess.run(
        [sys.executable, str(AGENT), "auto-renew", "run", "--server", "http://127.0.0.1:9"],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "自動更新ではパスワードを入力できません" in result.stderr


# --- the schedulers ---------------------------------------------------------------------------


def auto(store: Path, *args: str, input: str = "", **env: str) -> subprocess.CompletedProcess:
    server = ("--server", "https://kihonet.example.jp")
    return run_agent(
        "auto-renew", *args, *server, "--store", str(store), store=store, input=input, **env
    )


def calls(env: dict[str, str], tool: str) -> list[list[str]]:
    return [e["argv"] for e in read_log(Path(env["STANDIN_LOG"])) if e["tool"] == tool]


def test_linux_enable_writes_systemd_user_units_and_disable_removes_them(store_dir, schedulers):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    units = store_dir.parent / "home" / ".config" / "systemd" / "user"

    result = auto(store_dir, "--enable", "--yes", **env)

    assert result.returncode == 0, result.stderr
    service = (units / "kihonet-auto-renew.service").read_text()
    timer = (units / "kihonet-auto-renew.timer").read_text()
    assert "auto-renew" in service and "run" in service and str(store_dir) in service
    assert "https://kihonet.example.jp" in service
    assert "OnCalendar=daily" in timer and "OnStartupSec=" in timer
    assert calls(env, "systemctl") == [
        ["--user", "daemon-reload"],
        ["--user", "enable", "--now", "kihonet-auto-renew.timer"],
    ]
    assert "自動更新：有効" in auto(store_dir, "--status", **env).stdout

    assert auto(store_dir, "--disable", **env).returncode == 0
    assert not any(units.iterdir())
    assert ["--user", "disable", "--now", "kihonet-auto-renew.timer"] in calls(env, "systemctl")
    assert "自動更新：無効" in auto(store_dir, "--status", **env).stdout


def test_status_shows_the_next_run_systemd_itself_has_scheduled(store_dir, schedulers):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    assert auto(store_dir, "--enable", "--yes", **env).returncode == 0

    answer = {"STANDIN_STDOUT": "Wed 2026-12-02 03:00:00 UTC"}  # what systemctl answers
    status = auto(store_dir, "--status", **env, **answer)

    assert status.returncode == 0, status.stderr
    assert "自動更新：有効" in status.stdout
    assert "次回の自動実行：2026-12-02 12:00" in status.stdout  # in Japan time
    show = ["--user", "show", "kihonet-auto-renew.timer", "-p", "NextElapseUSecRealtime"]
    assert [*show, "--value"] in calls(env, "systemctl")
    # In another zone it is shown as systemd says it; disabled, nothing is asked.
    other = auto(store_dir, "--status", **env, STANDIN_STDOUT="Wed 2026-12-02 12:00:00 JST")
    assert "次回の自動実行：Wed 2026-12-02 12:00:00 JST" in other.stdout
    assert auto(store_dir, "--disable", **env).returncode == 0
    asked = len(calls(env, "systemctl"))
    assert "次回の自動実行" not in auto(store_dir, "--status", **env, **answer).stdout
    assert len(calls(env, "systemctl")) == asked


def test_status_shows_the_next_run_of_the_daily_windows_task(store_dir, schedulers):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "windows"}
    assert auto(store_dir, "--enable", "--yes", **env).returncode == 0
    answer = '"\\kihonet\\auto-renew-daily","2026/12/02 12:00:00","準備完了"'

    status = auto(store_dir, "--status", **env, STANDIN_STDOUT=answer)

    assert "次回の自動実行：2026/12/02 12:00:00" in status.stdout, status.stdout
    query = ["/Query", "/TN", "kihonet\\auto-renew-daily", "/FO", "CSV", "/NH"]
    assert query in calls(env, "schtasks")


def test_linux_without_systemd_gets_an_xdg_autostart_entry(store_dir, tmp_path):
    env = {"KIHONET_AGENT_PLATFORM": "linux", "PATH": str(tmp_path / "empty")}
    env |= keyring_env(tmp_path / "keyring", store_dir)
    result = auto(store_dir, "--enable", "--yes", **env)

    assert result.returncode == 0, result.stderr
    entry = store_dir.parent / "home" / ".config" / "autostart" / "kihonet-auto-renew.desktop"
    assert "Exec=" in entry.read_text() and "auto-renew" in entry.read_text()
    assert auto(store_dir, "--disable", **env).returncode == 0
    assert not entry.exists()


def test_enabling_asks_for_consent_in_japanese_and_a_no_registers_nothing(store_dir, schedulers):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    result = auto(store_dir, "--enable", input="n\n", **env)

    assert result.returncode == 1
    assert "自動更新を有効にします" in result.stdout and "1日1回" in result.stdout
    assert calls(env, "systemctl") == []
    assert not (store_dir.parent / "home" / ".config" / "systemd").exists()


def test_windows_enable_creates_a_daily_and_a_logon_task_and_disable_deletes_them(
    store_dir, schedulers
):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "windows"}
    assert auto(store_dir, "--enable", "--yes", **env).returncode == 0
    daily, logon = calls(env, "schtasks")
    assert daily[:5] == ["/Create", "/F", "/SC", "DAILY", "/ST"]
    assert daily[daily.index("/TN") + 1] == "kihonet\\auto-renew-daily"
    assert logon[logon.index("/SC") + 1] == "ONLOGON"
    command = daily[daily.index("/TR") + 1]
    assert "auto-renew run" in command and str(store_dir) in command
    assert logon[logon.index("/TR") + 1] == command

    assert "自動更新：有効" in auto(store_dir, "--status", **env).stdout
    assert auto(store_dir, "--disable", **env).returncode == 0
    deleted = [c for c in calls(env, "schtasks") if c[0] == "/Delete"]
    assert [c[-1] for c in deleted] == ["kihonet\\auto-renew-daily", "kihonet\\auto-renew-logon"]


def test_macos_enable_loads_a_launch_agent_and_disable_unloads_and_removes_it(
    store_dir, schedulers
):
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "macos"}
    plist = store_dir.parent / "home" / "Library" / "LaunchAgents" / "jp.kihonet.auto-renew.plist"

    assert auto(store_dir, "--enable", "--yes", **env).returncode == 0
    loaded = plistlib.loads(plist.read_bytes())
    assert loaded["RunAtLoad"] is True and "StartCalendarInterval" in loaded
    assert loaded["ProgramArguments"][2:4] == ["auto-renew", "run"]
    assert ["load", "-w", str(plist)] in calls(env, "launchctl")

    assert auto(store_dir, "--disable", **env).returncode == 0
    assert not plist.exists()
    assert calls(env, "launchctl")[-1] == ["unload", "-w", str(plist)]


def test_a_second_run_while_one_holds_the_lock_exits_at_once(store_dir):
    with agent.run_lock(agent.AgentStore(store_dir)) as locked:
        assert locked
        result = auto_run("http://127.0.0.1:9", store_dir)
    assert result.returncode == 0, result.stderr
    assert "自動更新は別の処理で実行中です" in result.stdout
    assert run_log(store_dir) == []


# --- turning it off tells the server ----------------------------------------------------------


def auto_enable(store: Path, server: str, **env: str) -> subprocess.CompletedProcess:
    return run_agent(
        "auto-renew", "--enable", "--yes", "--server", server, "--store", str(store),
        store=store, **env,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_disable_sends_the_signed_off_check_in_and_the_desk_sees_it_off(
    live_server, live_ca, store_dir, schedulers, admin_client
):
    """``auto-renew --disable`` removes the registration and, signed with each held
    certificate's key, tells the server it enabled auto-renewal for: the desk's screen then
    shows 自動更新：無効 (audited as auto_renewal_disabled). No ``--server`` needed."""
    held = hold(store_dir, age=timedelta(days=1))
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    enabled = auto_enable(store_dir, live_server.url, **env)
    assert enabled.returncode == 0, enabled.stderr
    assert auto_run(live_server.url, store_dir, "--no-install").returncode == 0
    assert AutoRenewal.objects.get(certificate=held).enabled is True
    desk = f"/admin/issuance/kihonetuser/{held.user_id}/change/"
    assert "自動更新：有効" in admin_client.get(desk, secure=True).content.decode()

    result = run_agent("auto-renew", "--disable", "--store", str(store_dir), store=store_dir, **env)

    assert result.returncode == 0, result.stderr
    assert "自動更新を無効にしました。" in result.stdout
    assert (
        f"企保ネットに自動更新の解除を知らせました（シリアル番号：{held.serial}）" in result.stdout
    )
    assert AutoRenewal.objects.get(certificate=held).enabled is False
    [event] = AuditEvent.objects.filter(action="auto_renewal_disabled")
    assert event.detail == {"serial": held.serial}
    assert "自動更新：無効" in admin_client.get(desk, secure=True).content.decode()
    assert not any((store_dir.parent / "home" / ".config" / "systemd" / "user").iterdir())


def test_disable_with_the_server_away_still_turns_it_off_here_and_says_so(
    store_dir, ca, schedulers
):
    key = agent.generate_private_key()
    held = ca.issue(key.public_key())
    agent.AgentStore(store_dir, PASSPHRASE).install(key, held)
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    dead = f"http://127.0.0.1:{free_port()}"
    assert auto_enable(store_dir, dead, **env).returncode == 0

    result = run_agent("auto-renew", "--disable", "--store", str(store_dir), store=store_dir, **env)

    assert result.returncode == 0, result.stderr
    assert "自動更新を無効にしました。" in result.stdout
    assert "企保ネットに自動更新の解除を知らせられませんでした" in result.stderr
    assert "agent_network" in result.stderr
    assert not any((store_dir.parent / "home" / ".config" / "systemd" / "user").iterdir())


# --- turning it on tells the server at once --------------------------------------------------


def desk_page(admin_client, certificate: Certificate) -> str:
    desk = f"/admin/issuance/kihonetuser/{certificate.user_id}/change/"
    return admin_client.get(desk, secure=True).content.decode()


@pytest.mark.django_db(transaction=True)
def test_enable_sends_the_signed_on_check_in_at_once_and_the_desk_sees_it_on(
    live_server, live_ca, store_dir, schedulers, admin_client
):
    """``auto-renew --enable`` reports "on" for each held certificate right away (the run's own
    check-in), so the desk sees 自動更新：有効 before the first scheduled run; a renewed one is
    not reported."""
    held = hold(store_dir, age=timedelta(days=1))
    renewed = hold(store_dir, age=timedelta(days=2))
    agent.AgentStore(store_dir, PASSPHRASE).record_renewal(renewed.serial, "0A")
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}

    result = auto_enable(store_dir, live_server.url, **env)

    assert result.returncode == 0, result.stderr
    assert "自動更新を有効にしました。" in result.stdout
    assert (
        f"企保ネットに自動更新の設定を知らせました（シリアル番号：{held.serial}）" in result.stdout
    )
    assert renewed.serial not in result.stdout
    assert run_log(store_dir) == []  # no run yet: the check-in came from enabling
    assert AutoRenewal.objects.get(certificate=held).enabled is True
    assert not AutoRenewal.objects.filter(certificate=renewed).exists()
    [event] = AuditEvent.objects.filter(action="auto_renewal_enabled")
    assert event.detail == {"serial": held.serial}
    assert "自動更新：有効" in desk_page(admin_client, held)


@pytest.mark.django_db(transaction=True)
def test_the_route_sends_the_on_check_in_at_once_and_says_what_it_gave(
    live_server, live_ca, store_dir, schedulers, admin_client
):
    """The page's 「自動更新を設定する」 (POST /auto-renew) does what ``--enable`` does: the desk
    sees 自動更新：有効 at once, and the answer lists each certificate's check-in."""
    held = hold(store_dir, age=timedelta(days=1))
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    with serving_agent(store_dir, live_server.url, **env) as running:
        reply = call(running, "POST", "/auto-renew", body={"enable": True, "consent": True})

    assert reply.status == 200, reply.body
    assert reply.body == {
        "enabled": True,
        "message": "自動更新を設定しました。",
        "reports": [{"serial": held.serial, "reported": True}],
    }
    assert AutoRenewal.objects.get(certificate=held).enabled is True
    assert "自動更新：有効" in desk_page(admin_client, held)


def test_enable_with_the_server_away_registers_anyway_and_says_the_check_in_failed(
    store_dir, ca, schedulers
):
    key = agent.generate_private_key()
    held = ca.issue(key.public_key())
    agent.AgentStore(store_dir, PASSPHRASE).install(key, held)
    serial = format(held.serial_number, "X")
    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    dead = f"http://127.0.0.1:{free_port()}"
    units = store_dir.parent / "home" / ".config" / "systemd" / "user"

    result = auto_enable(store_dir, dead, **env)

    assert result.returncode == 0, result.stderr
    assert "自動更新を有効にしました。" in result.stdout
    assert f"企保ネットに自動更新の設定を知らせられませんでした（シリアル番号：{serial}）" in (
        result.stderr
    )
    assert "agent_network" in result.stderr and agent.CHECK_IN_FAILED_ON in result.stderr
    assert (units / "kihonet-auto-renew.timer").is_file()

    with serving_agent(store_dir, dead, **env) as running:
        reply = call(running, "POST", "/auto-renew", body={"enable": True, "consent": True})
    assert reply.status == 200, reply.body
    assert reply.body["enabled"] is True
    assert reply.body["message"] == "自動更新を設定しました。" + agent.CHECK_IN_FAILED_ON
    [report] = reply.body["reports"]
    assert report["serial"] == serial and report["reported"] is False
    assert report["status_code"] == "agent_network"


# --- no keyring, no auto-renewal ---------------------------------------------------------------

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def registered_nothing(store: Path, env: dict[str, str]) -> bool:
    config = store.parent / "home" / ".config"
    return (
        read_log(Path(env["STANDIN_LOG"])) == []
        and not (config / "systemd").exists()
        and not (config / "autostart").exists()
        and not (store.parent / "home" / "Library").exists()
    )


@pytest.mark.parametrize("platform", ["linux", "windows", "macos"])
def test_without_a_keyring_enabling_is_refused_before_anything_is_registered(
    store_dir, ca, schedulers, platform
):
    """A scheduled run cannot ask for the password: where no keyring holds the store's secret
    (only ``KIHONET_AGENT_PASSPHRASE`` here), ``--enable`` and the route refuse and say why."""
    key = agent.generate_private_key()
    agent.AgentStore(store_dir, PASSPHRASE).install(key, ca.issue(key.public_key()))
    env = {**schedulers, **NO_KEYRING, "KIHONET_AGENT_PLATFORM": platform}

    result = auto_enable(store_dir, "https://kihonet.example.jp", **env)

    assert result.returncode == 1
    assert agent.NO_KEYRING_FOR_AUTO_RENEWAL in result.stderr
    assert "自動更新ではパスワードを入力できない" in result.stderr
    assert "agent_no_keyring" in result.stderr
    assert registered_nothing(store_dir, env)
    asked = run_agent(
        "auto-renew", "--enable", "--server", "https://kihonet.example.jp",
        "--store", str(store_dir), store=store_dir, input="y\n", **env,
    )  # fmt: skip
    assert asked.returncode == 1 and "自動更新を有効にします" not in asked.stdout  # not asked

    with serving_agent(store_dir, "https://kihonet.example.jp", **env) as running:
        reply = call(running, "POST", "/auto-renew", body={"enable": True, "consent": True})
    assert reply.status == 409
    assert reply.body == {
        "status_code": "agent_no_keyring",
        "message": agent.NO_KEYRING_FOR_AUTO_RENEWAL,
    }
    assert registered_nothing(store_dir, env)


def test_a_keyring_without_the_stores_password_gets_it_saved_once_on_the_command_line(
    store_dir, ca, schedulers, tmp_path
):
    """A store protected by the customer's own password (made before the keyring was there):
    the page cannot ask for it and says to run ``auto-renew --enable``; the command line asks
    for it once, a wrong one registers nothing, the right one is kept in the keyring and the
    run is registered."""
    key = agent.generate_private_key()
    agent.AgentStore(store_dir, PASSPHRASE).install(key, ca.issue(key.public_key()))
    env = {
        **schedulers,
        **keyring_env(tmp_path / "empty-keyring"),
        "KIHONET_AGENT_PLATFORM": "linux",
    }
    with serving_agent(store_dir, "https://kihonet.example.jp", **env) as running:
        reply = call(running, "POST", "/auto-renew", body={"enable": True, "consent": True})
    assert reply.status == 409
    assert "「auto-renew --enable」を実行すると" in reply.body["message"]
    assert registered_nothing(store_dir, env)

    wrong = auto_enable(
        store_dir, "https://kihonet.example.jp", **env, KIHONET_AGENT_PASSPHRASE="wrong"
    )
    assert wrong.returncode == 1
    assert agent.SAVING_TO_KEYRING_NOTICE in wrong.stderr
    assert "パスワードが正しくありません" in wrong.stderr
    assert registered_nothing(store_dir, env)
    keyring = file_keyring(tmp_path / "empty-keyring")
    assert keyring.get_password("kihonet-agent", str(store_dir.resolve())) is None

    saved = auto_enable(store_dir, f"http://127.0.0.1:{free_port()}", **env)
    assert saved.returncode == 0, saved.stderr
    assert keyring.get_password("kihonet-agent", str(store_dir.resolve())) == PASSPHRASE
    assert (store_dir.parent / "home" / ".config" / "systemd" / "user").is_dir()


# --- a random moment inside the window (RFC 9773) ---------------------------------------------


def test_random_moments_are_uniform_inside_the_window():
    start = datetime(2029, 4, 20, tzinfo=UTC)
    end = start + timedelta(days=1)
    rng = random.Random(9773)
    moments = [agent.random_moment(start, end, rng) for _ in range(2000)]
    assert all(start <= moment < end for moment in moments)
    quarters = Counter(int((m - start) / (end - start) * 4) for m in moments)
    assert sorted(quarters) == [0, 1, 2, 3]
    assert all(400 <= count <= 600 for count in quarters.values()), quarters
    assert agent.random_moment(start, start, rng) == start  # an empty window: its start


def _window(server: str, serial: str) -> tuple[datetime, datetime]:
    window = agent.ApiClient(server).get(f"/api/v1/certificates/{serial}/renewal-info")[
        "suggestedWindow"
    ]
    return datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])


def _never(start: datetime, end: datetime) -> datetime:
    raise AssertionError(f"picked again for the same window {start}..{end}")


@pytest.mark.django_db(transaction=True)
def test_r09_the_tool_renews_at_its_random_moment_kept_between_runs_not_at_the_start(
    live_server, live_ca, store_dir
):
    """With a seeded generator and the tool's clock forced: a run before the moment it picked
    waits (and says when), the next run agrees on the moment without picking again, a run
    after it renews. The moment lies strictly inside the window, not at its start."""
    old = hold(store_dir, age=IN_WINDOW)
    store = agent.AgentStore(store_dir, PASSPHRASE)
    client = agent.ApiClient(live_server.url)
    [info] = store.certificates()
    start, end = _window(live_server.url, old.serial)
    picked: list[tuple[datetime, datetime]] = []

    def seeded(low: datetime, high: datetime) -> datetime:
        picked.append((low, high))
        return agent.random_moment(low, high, random.Random(18))

    moment = agent.random_moment(start, end, random.Random(18))
    assert start < moment < end

    before = agent.auto_renew_one(client, store, info, None, moment - timedelta(seconds=1), seeded)
    assert before["result"] == "waiting"
    assert datetime.fromisoformat(before["next_check"]) == moment
    assert picked == [(start, end)]
    again = agent.auto_renew_one(client, store, info, None, moment - timedelta(seconds=1), _never)
    assert again["result"] == "waiting" and again["next_check"] == before["next_check"]
    assert not Certificate.objects.filter(renewed_from=old).exists()

    after = agent.auto_renew_one(client, store, info, None, moment + timedelta(seconds=1), _never)
    assert after["result"] == "renewed", after
    assert Certificate.objects.get(renewed_from=old).serial == after["new_serial"]


@pytest.mark.django_db(transaction=True)
def test_r09_a_window_the_server_moved_gets_a_new_moment_inside_it(live_server, live_ca, store_dir):
    old = hold(store_dir, age=IN_WINDOW)
    store = agent.AgentStore(store_dir, PASSPHRASE)
    client = agent.ApiClient(live_server.url)
    [info] = store.certificates()
    start, end = _window(live_server.url, old.serial)

    def first_pick(low: datetime, high: datetime) -> datetime:
        return agent.random_moment(low, high, random.Random(4))

    first = agent.auto_renew_one(client, store, info, None, start, first_pick)
    assert first["result"] == "waiting"
    kept = datetime.fromisoformat(first["next_check"])
    assert start < kept < end

    moved_start = timezone.now() + timedelta(days=2)
    auto_renewal.move_renewal_windows(
        [old], start=moved_start, end=moved_start + timedelta(hours=5), reason="test",
        actor=audit.Actor.system("test"),
    )  # fmt: skip
    start, end = _window(live_server.url, old.serial)
    assert start == moved_start
    picked: list[tuple[datetime, datetime]] = []

    def seeded(low: datetime, high: datetime) -> datetime:
        picked.append((low, high))
        return agent.random_moment(low, high, random.Random(5))

    waiting = agent.auto_renew_one(client, store, info, None, start, seeded)
    assert picked == [(start, end)]
    moment = datetime.fromisoformat(waiting["next_check"])
    assert waiting["result"] == "waiting" and start < moment < end and moment != kept
    assert not Certificate.objects.filter(renewed_from=old).exists()
