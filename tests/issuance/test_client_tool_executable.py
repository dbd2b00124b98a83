"""R13: the packaged client tool, the one file a customer downloads and opens.

``make client-tool`` builds it (PyInstaller, the spec in issuance/client_tool/packaging/) into
``KIHONET_CLIENT_TOOL_DIR``; ``make test`` builds it first. Here it runs with an environment
that holds nothing of this project (no Python path, a fresh HOME): it must need nothing
installed. Under CI=true a missing build fails the test.
"""

from __future__ import annotations

import hashlib
import queue
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from issuance.client_tool import builds
from issuance.models import Certificate
from tests.client_tool.helpers import READY, free_port, notice_fields, run_captured
from tests.conftest import require
from tests.factories import make_notice

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pc password"
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15"
)


@pytest.fixture(scope="module")
def executable() -> Path:
    """The Linux build of ``make client-tool``."""
    path = Path(settings.KIHONET_CLIENT_TOOL_DIR) / builds.FILENAMES[builds.LINUX]
    require(path.is_file(), f"the built client tool {path} (make client-tool)")
    return path


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What a customer's PC gives the tool: a PATH and a home, nothing of this project."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def enroll_arguments(notice, server: str) -> list[str]:
    """``enroll`` with the six fields of ``notice`` (R01), the address confirmed (R04)."""
    return ["enroll", "--server", server, *notice_fields(notice), "--yes"]


def serve_until_ready(command: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    """Run the tool until it prints 「受付を開始しました。」, check its /status, stop it."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env,
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while READY not in seen:
            try:
                seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no {READY}: {seen} exit={process.poll()}")
        address = next(line for line in seen if line.startswith("受付アドレス："))
        server = next(line for line in seen if line.startswith("接続先サーバー："))
        origin = server.removeprefix("接続先サーバー：")
        request = urllib.request.Request(
            address.removeprefix("受付アドレス：") + "/status", headers={"Origin": origin}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert b'"ready"' in response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
    return seen


def test_r13_executable_starts_and_prints_ready_in_serve(executable, tmp_path):
    """Opened with ``serve``, it says 「受付を開始しました。」 and answers the site's origin."""
    port = free_port()
    seen = serve_until_ready(
        [str(executable), "serve", "--server", "https://kihonet.example.jp", "--port", str(port)],
        bare_env(tmp_path / "home", KIHONET_AGENT_PASSPHRASE=PASSWORD),
        tmp_path,
    )
    assert "接続先サーバー：https://kihonet.example.jp" in seen
    assert f"受付アドレス：http://127.0.0.1:{port}" in seen


def test_r13_executable_opened_without_a_command_serves(executable, tmp_path):
    """A double click (no command) starts ``serve`` for the site the tool was built for
    (here given as ``KIHONET_SERVER``, which the built-in site only defaults)."""
    seen = serve_until_ready(
        [str(executable)],
        bare_env(
            tmp_path / "home",
            KIHONET_AGENT_PASSPHRASE=PASSWORD,
            KIHONET_SERVER="https://kihonet.example.jp",
            KIHONET_AGENT_PORT=str(free_port()),
        ),
        tmp_path,
    )
    assert "接続先サーバー：https://kihonet.example.jp" in seen


TEST_KEYRING = '''"""A keyring of the test's own: a JSON file beside this module."""
import json
from pathlib import Path

from keyring.backend import KeyringBackend

FILE = Path(__file__).with_name("secrets.json")


class FileKeyring(KeyringBackend):
    priority = 1

    def _read(self):
        return json.loads(FILE.read_text()) if FILE.exists() else {}

    def get_password(self, service, username):
        return self._read().get(service + "/" + username)

    def set_password(self, service, username, password):
        FILE.write_text(json.dumps({**self._read(), service + "/" + username: password}))

    def delete_password(self, service, username):
        FILE.write_text(json.dumps({k: v for k, v in self._read().items() if k != service + "/" + username}))
'''


def give_a_keyring(home: Path, folder: Path) -> None:
    """A keyring the build's ``keyring`` loads as keyring documents it (``keyringrc.cfg`` with
    ``keyring-path`` and ``default-keyring``): the build bundles no file keyring, and this
    machine has no Secret Service."""
    folder.mkdir(parents=True)
    (folder / "test_keyring.py").write_text(TEST_KEYRING, encoding="utf-8")
    config = home / ".config" / "python_keyring" / "keyringrc.cfg"
    config.parent.mkdir(parents=True)
    config.write_text(
        f"[backend]\nkeyring-path={folder}\ndefault-keyring=test_keyring.FileKeyring\n",
        encoding="utf-8",
    )


def test_r09_executable_registers_itself_for_auto_renewal_and_that_command_runs(
    executable, tmp_path
):
    """``auto-renew --enable`` of the build registers the executable itself (no script path
    inside the bundle), and the registered command runs: with nothing held, it says so.
    Without a keyring it refuses (a scheduled run could not open the store) and registers
    nothing."""
    import shlex

    from tests.client_tool.standins import SCHEDULERS, install_standins

    standins = install_standins(tmp_path / "bin", SCHEDULERS)
    home, store = tmp_path / "home", tmp_path / "store"
    env = bare_env(
        home,
        PATH=f"{standins}:/usr/bin:/bin",
        STANDIN_LOG=str(tmp_path / "standin.log"),
        KIHONET_AGENT_PLATFORM="linux",
        KIHONET_AGENT_PASSPHRASE=PASSWORD,
    )
    server = f"http://127.0.0.1:{free_port()}"
    enable = [str(executable), "auto-renew", "--enable", "--yes", "--server", server]
    enable += ["--store", str(store)]
    refused = subprocess.run(
        enable, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert refused.returncode == 1 and "agent_no_keyring" in refused.stderr, refused.stderr
    assert not (home / ".config" / "systemd").exists()
    assert not (tmp_path / "standin.log").exists()

    give_a_keyring(home, tmp_path / "keyring")
    enabled = subprocess.run(
        enable, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert enabled.returncode == 0, enabled.stderr
    service = (home / ".config" / "systemd" / "user" / "kihonet-auto-renew.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_start.removeprefix("ExecStart="))
    assert command == [
        str(executable), "auto-renew", "run", "--server", server, "--store", str(store.resolve()),
    ]  # fmt: skip

    scheduled = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert scheduled.returncode == 0, scheduled.stderr
    assert "自動更新の対象となる証明書はありません。" in scheduled.stdout


def test_r01_r13_executable_enrolls_against_the_live_server(
    executable, live_server, live_ca, tmp_path
):
    """``enroll`` of the packaged tool gets a certificate from the running server, kept in
    the tool's own store, and ``list`` shows it."""
    notice = make_notice()
    env = bare_env(tmp_path / "home", KIHONET_AGENT_PASSPHRASE=PASSWORD)
    store = tmp_path / "store"
    result = run_captured(
        [str(executable), *enroll_arguments(notice, live_server.url), "--store", str(store)],
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "クライアント証明書の作成が完了しました" in result.stdout
    certificate = Certificate.objects.get(user=notice.user)
    assert f"シリアル番号：{certificate.serial}" in result.stdout
    assert (store / f"{certificate.serial}.p12").is_file()

    listing = run_captured([str(executable), "list", "--store", str(store)], env=env)
    assert listing.returncode == 0, listing.stderr
    assert certificate.serial in listing.stdout and notice.user.user_id in listing.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_r13_download_page_offers_the_build_for_the_visitors_system(executable, client, settings):
    """Linux visitor: the Linux build with its SHA-256, the right ``--server`` for this site;
    the file downloaded is the build itself."""
    settings.KIHONET_CLIENT_TOOL_DIR = executable.parent
    digest = sha256(executable)
    page = client.get(reverse("issuance:client-tool-page"), HTTP_USER_AGENT=LINUX_CHROME)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-system="linux"' in html
    assert re.search(r'id="tool-filename">kihonet_agent-linux<', html)
    assert re.search(rf'id="tool-sha256">{digest}<', html)
    assert "./kihonet_agent-linux serve --server http://testserver" in html
    assert "python kihonet_agent.py serve" not in html.split('id="tool-files"')[0]

    home = client.get(reverse("issuance:home"), HTTP_USER_AGENT=LINUX_CHROME).content.decode()
    assert "/client-tool/kihonet_agent-linux" in home and digest in home
    assert "./kihonet_agent-linux serve --server http://testserver" in home
    assert "python kihonet_agent.py" not in home

    download = client.get(
        reverse("issuance:client-tool-build", args=["kihonet_agent-linux"]),
        HTTP_USER_AGENT=LINUX_CHROME,
    )
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == digest


def test_r13_download_page_falls_back_to_the_script_without_a_build(client, settings, tmp_path):
    """Windows and macOS visitors with no build in the folder: the single-file script, with
    plain instructions (Python, cryptography, the command with this site's ``--server``)."""
    settings.KIHONET_CLIENT_TOOL_DIR = tmp_path / "none-built"
    script_digest = sha256(builds.SCRIPT)
    for agent in (WINDOWS_EDGE, MAC_SAFARI):
        page = client.get(
            reverse("issuance:client-tool-page"), HTTP_USER_AGENT=agent, HTTP_HOST="localhost"
        )
        html = page.content.decode()
        assert page.status_code == 200
        assert re.search(r'id="tool-filename">kihonet_agent.py<', html)
        assert re.search(rf'id="tool-sha256">{script_digest}<', html)
        assert "python -m pip install cryptography" in html
        assert "python kihonet_agent.py serve --server http://localhost" in html
        assert "kihonet_agent-windows.exe" not in html.split("certutil -hashfile")[0]
    home = client.get(reverse("issuance:home"), HTTP_USER_AGENT=WINDOWS_EDGE).content.decode()
    assert 'href="/client-tool/kihonet_agent.py"' in home
    assert "python kihonet_agent.py serve --server http://testserver" in home


def test_r13_windows_visitor_gets_the_exe_when_it_is_built(client, settings, tmp_path):
    """With a Windows build in the folder a Windows visitor is offered it (double click) and
    the other systems' files are listed; unknown names are never served from the folder."""
    folder = tmp_path / "built"
    folder.mkdir()
    exe = folder / "kihonet_agent-windows.exe"
    exe.write_bytes(b"MZ" + b"\0" * 1000)
    (folder / "secret.txt").write_text("not to be served")
    settings.KIHONET_CLIENT_TOOL_DIR = folder
    html = client.get(
        reverse("issuance:client-tool-page"), HTTP_USER_AGENT=WINDOWS_EDGE
    ).content.decode()
    assert re.search(r'id="tool-filename">kihonet_agent-windows.exe<', html)
    assert re.search(rf'id="tool-sha256">{sha256(exe)}<', html)
    assert "ダブルクリックして開いてください" in html
    assert ".\\kihonet_agent-windows.exe serve --server http://testserver" in html
    for name in ("secret.txt", "kihonet_agent-macos", "../kihonet_agent-windows.exe"):
        response = client.get(f"/client-tool/{name}")
        assert response.status_code == 404, name
