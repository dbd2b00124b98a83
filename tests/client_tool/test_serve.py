"""``kihonet_agent.py serve``: started for real in a subprocess and spoken to over HTTP."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from issuance.client_tool import kihonet_agent as agent

from .helpers import (
    PASSPHRASE,
    READY,
    STUB_FIELDS,
    Agent,
    ThrowawayCA,
    call,
    keyring_env,
    run_agent,
    serving_agent,
    stub_server,
)
from .standins import SCHEDULERS, install_standins, read_log

SITE = "https://kihonet.example.jp"


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory, ca: ThrowawayCA) -> Path:
    """A store holding three real certificates, one of them expired."""
    path = tmp_path_factory.mktemp("filled") / "store"
    store = agent.AgentStore(path, passphrase=PASSPHRASE)
    now = datetime.now(UTC)
    for user_id, start, days in (
        ("U000003", now, 900),
        ("U000001", now, 300),
        ("U000002", now - timedelta(days=40), 30),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        store.install(
            key, ca.issue(key.public_key(), user_id=user_id, not_before=start, days=days), ca.chain
        )
    return path


@pytest.fixture(scope="module")
def running(filled_store: Path) -> Iterator[Agent]:
    with serving_agent(filled_store, SITE) as started:
        yield started


def test_r13_serve_prints_ready_message(running: Agent):
    assert READY in running.lines
    reply = call(running, "GET", "/status")
    assert reply.status == 200
    assert reply.body == {
        "status": "ready",
        "message": READY,
        "version": agent.__version__,
        "server": SITE,
    }


def test_r13_serve_stops_cleanly_on_sigterm(tmp_path: Path):
    with serving_agent(tmp_path / "store", SITE) as started:
        assert started.output_after_stop()[-1] == "受付を終了しました。"
        assert started.process.returncode == 0


def _listening_sockets(port: int) -> list[str]:
    entries = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                entries.append(local)
    return entries


def test_binds_to_127_0_0_1_only(running: Agent):
    if Path("/proc/net/tcp").exists():
        assert _listening_sockets(running.port) == [f"0100007F:{running.port:04X}"]
    # Any other address of this machine is refused, even another loopback one.
    for family, address in ((socket.AF_INET, "127.0.0.2"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            try:
                sock.connect((address, running.port))
            except (ConnectionRefusedError, OSError):
                continue
            pytest.fail(f"agent reachable on {address}")
    with socket.create_connection(("127.0.0.1", running.port), timeout=2):
        pass


def test_allowed_origin_gets_cors_headers(running: Agent):
    reply = call(running, "GET", "/status")
    assert reply.headers["Access-Control-Allow-Origin"] == SITE
    assert reply.headers["Vary"] == "Origin"
    assert reply.headers["Content-Type"].startswith("application/json")


def test_preflight_allows_private_network_access(running: Agent):
    reply = call(
        running,
        "OPTIONS",
        "/enroll",
        headers={
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == SITE
    assert reply.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert reply.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert reply.headers["Access-Control-Max-Age"] == "600"
    assert reply.headers["Access-Control-Allow-Private-Network"] == "true"


def test_preflight_without_private_network_request(running: Agent):
    reply = call(running, "OPTIONS", "/status", headers={"Access-Control-Request-Method": "GET"})
    assert reply.status == 204
    assert "Access-Control-Allow-Private-Network" not in reply.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://kihonet.example.jp",
        "https://kihonet.example.jp:8443",
        "https://kihonet.example.jp.evil.example",
        "null",
        "",
    ],
)
def test_other_origin_is_refused(running: Agent, origin: str):
    for method, path in (("GET", "/status"), ("GET", "/certificates"), ("OPTIONS", "/enroll")):
        reply = call(
            running,
            method,
            path,
            origin=origin,
            headers={
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Private-Network": "true",
            },
        )
        assert reply.status == 403, (method, path)
        assert reply.body == {"error": "forbidden"}
        assert "Access-Control-Allow-Origin" not in reply.headers
        assert "Access-Control-Allow-Private-Network" not in reply.headers


def test_missing_origin_is_refused(running: Agent):
    reply = call(running, "GET", "/certificates", origin=None)
    assert reply.status == 403 and reply.body == {"error": "forbidden"}


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1",
        "127.0.0.1:1",
        "kihonet.example.jp",
        "192.168.0.10:{port}",
    ],
)
def test_bad_host_is_refused(running: Agent, host: str):
    """DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused."""
    reply = call(running, "GET", "/status", host=host.format(port=running.port))
    assert reply.status == 403 and reply.body == {"error": "forbidden"}


def test_localhost_host_is_accepted(running: Agent):
    assert call(running, "GET", "/status", host=f"localhost:{running.port}").status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nothing"),
        ("POST", "/status"),
        ("GET", "/enroll"),
        ("DELETE", "/certificates"),
        ("OPTIONS", "/nothing"),
    ],
)
def test_unknown_path_is_404(running: Agent, method: str, path: str):
    reply = call(running, method, path, data=b"{}" if method == "POST" else None)
    assert reply.status == 404
    assert reply.body == {"error": "not_found"}


def test_oversized_body_is_413(running: Agent):
    data = b'{"token": "' + b"x" * (64 * 1024) + b'"}'
    reply = call(running, "POST", "/enroll", data=data)
    assert reply.status == 413
    assert reply.body == {"error": "payload_too_large"}


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"{}", b'{"token": 5}'])
def test_bad_json_is_400(running: Agent, data: bytes):
    reply = call(running, "POST", "/enroll", data=data)
    assert reply.status == 400
    assert reply.body["status_code"] == "agent_bad_request"


def test_certificates_lists_the_store_sorted_by_expiry(running: Agent, ca: ThrowawayCA):
    reply = call(running, "GET", "/certificates")
    assert reply.status == 200
    listed = reply.body["certificates"]
    assert [c["user_id"] for c in listed] == ["U000002", "U000001", "U000003"]
    assert [c["expired"] for c in listed] == [True, False, False]
    first = listed[1]
    assert set(first) == {
        "serial",
        "subject",
        "user_id",
        "management_number",
        "kihonet_code",
        "not_before",
        "not_after",
        "expired",
        "status",
        "installed_in",
    }
    assert [c["status"] for c in listed] == ["expired", "unknown", "unknown"]
    assert first["installed_in"] == []
    assert first["management_number"] == "A123456789"
    assert first["kihonet_code"] == "12345678"
    assert first["subject"] == "CN=U000001 A123456789,OU=12345678,O=Example Insurance Co.,C=JP"
    assert first["serial"] == first["serial"].upper() and not first["serial"].startswith("0")
    assert datetime.fromisoformat(first["not_after"]).utcoffset() == timedelta(0)


def test_enroll_and_renew_through_the_local_server(tmp_path: Path, ca: ThrowawayCA):
    store = tmp_path / "store"
    with stub_server(ca) as (server, state), serving_agent(store, server) as running:
        fields = dict(STUB_FIELDS)
        # What the site does before handing the token to the agent.
        client = agent.ApiClient(server)
        token = client.create_enrollment(fields)["token"]
        client.confirm_enrollment(token)

        enrolled = call(running, "POST", "/enroll", body={"token": token})
        assert enrolled.status == 200, enrolled.body
        assert set(enrolled.body) == {
            "serial",
            "not_after",
            "subject",
            "user_id",
            "management_number",
            "installed_in",
            "install_error",
        }
        assert enrolled.body["user_id"] == "U000001"
        assert enrolled.headers["Access-Control-Allow-Origin"] == server
        nss = {
            "store": "nss",
            "label": "Google Chrome / Chromium 用の証明書ストア（Linux NSS 共有データベース）",
            "location": str(tmp_path / "home" / ".local" / "share" / "pki" / "nssdb"),
        }
        assert enrolled.body["installed_in"] == [nss]
        assert enrolled.body["install_error"] is None

        renewed = call(running, "POST", "/renew", body={"serial": enrolled.body["serial"]})
        assert renewed.status == 200, renewed.body
        assert renewed.body["serial"] != enrolled.body["serial"]
        assert renewed.body["installed_in"] == [nss]
        assert renewed.body["install_error"] is None

        listed = call(running, "GET", "/certificates").body["certificates"]
        by_serial = {c["serial"]: c for c in listed}
        assert set(by_serial) == {enrolled.body["serial"], renewed.body["serial"]}
        # The stand-in server has no status endpoint: the tool's own record says "renewed".
        assert by_serial[enrolled.body["serial"]]["status"] == "renewed"
        assert by_serial[enrolled.body["serial"]]["installed_in"] == []
        assert by_serial[renewed.body["serial"]]["installed_in"] == [nss]
    old = pkcs12.load_key_and_certificates(
        (store / f"{enrolled.body['serial']}.p12").read_bytes(), PASSPHRASE.encode()
    )
    new = pkcs12.load_key_and_certificates(
        (store / f"{renewed.body['serial']}.p12").read_bytes(), PASSPHRASE.encode()
    )
    assert old[0].private_numbers() != new[0].private_numbers()  # a new key for the renewal
    for _, body in state.requests:  # the private key never left the agent
        assert "PRIVATE KEY" not in str(body)


def test_server_errors_are_passed_back(tmp_path: Path, ca: ThrowawayCA):
    with stub_server(ca) as (server, _), serving_agent(tmp_path / "store", server) as running:
        reply = call(running, "POST", "/enroll", body={"token": "unknown-token"})
        assert reply.status == 404
        assert reply.body == {"status_code": "3410", "message": "受付情報が見つかりません"}
        reply = call(running, "POST", "/renew", body={"serial": "ABC123"})
        assert reply.status == 404 and reply.body["status_code"] == "agent_not_found"


def test_network_failure_is_502(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serving_agent(tmp_path / "store", closed) as running:
        reply = call(running, "POST", "/enroll", body={"token": "t"})
    assert reply.status == 502
    assert reply.body["status_code"] == "agent_network"
    assert reply.body["message"].startswith("サーバーに接続できませんでした。")


def test_r14_enroll_without_rights_answers_admin_required(unwritable_dir: Path, ca):
    with stub_server(ca) as (server, state), serving_agent(unwritable_dir, server) as running:
        reply = call(running, "POST", "/enroll", body={"token": "any"})
    assert reply.status == 500
    assert reply.body == {"status_code": "admin_required", "message": agent.ADMIN_REQUIRED_MESSAGE}
    assert state.requests == []  # refused before asking the server for a certificate


def _enrollment_token(server: str) -> str:
    client = agent.ApiClient(server)
    token = client.create_enrollment(dict(STUB_FIELDS))["token"]
    client.confirm_enrollment(token)
    return token


def test_r14_refused_install_is_said_in_the_enroll_answer_and_install_retries(
    tmp_path: Path, unwritable_dir: Path, ca: ThrowawayCA
):
    """The pages' contract: the certificate is issued (200) and ``install_error`` says R14."""
    store = tmp_path / "store"
    with (
        stub_server(ca) as (server, _),
        serving_agent(store, server, HOME=str(unwritable_dir)) as running,
    ):
        enrolled = call(running, "POST", "/enroll", body={"token": _enrollment_token(server)})
        assert enrolled.status == 200, enrolled.body
        assert enrolled.body["installed_in"] == []
        assert enrolled.body["install_error"] == {
            "code": "admin_rights_required",
            "message": agent.ADMIN_REQUIRED_MESSAGE,
        }
        serial = enrolled.body["serial"]
        assert (store / f"{serial}.p12").is_file()  # kept in the tool's own store
        retried = call(running, "POST", "/install", body={"serial": serial})
        assert retried.status == 200
        assert retried.body["serial"] == serial
        assert retried.body["install_error"]["code"] == "admin_rights_required"
        unknown = call(running, "POST", "/install", body={"serial": "ABC"})
        assert unknown.status == 404 and unknown.body["status_code"] == "agent_not_found"
        listed = call(running, "GET", "/certificates").body["certificates"]
        assert [(c["serial"], c["installed_in"]) for c in listed] == [(serial, [])]


# --- auto-renewal from the completion page (issue 18) -------------------------------------------


def test_r09_auto_renew_route_registers_only_with_consent_from_the_sites_origin(tmp_path: Path):
    """POST /auto-renew registers the scheduler only when the page says the customer pressed
    「自動更新を設定する」 (``consent: true``), only from the site's origin and Host, only as JSON
    (a cross-site form cannot send it without a preflight the tool refuses); it writes what
    ``auto-renew --enable`` writes, and ``enable: false`` removes it."""
    folder = install_standins(tmp_path / "bin", SCHEDULERS)
    log = tmp_path / "standin.log"
    env = {
        "KIHONET_AGENT_PLATFORM": "linux",
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_LOG": str(log),
        **keyring_env(tmp_path / "keyring"),  # a run can open the store unasked
    }
    store = tmp_path / "store"
    units = tmp_path / "home" / ".config" / "systemd" / "user"
    consent = {"enable": True, "consent": True}
    with serving_agent(store, SITE, **env) as running:
        assert call(running, "GET", "/auto-renew").body == {"enabled": False, "platform": "linux"}
        assert call(running, "GET", "/auto-renew", origin="https://evil.example").status == 403
        refused = [
            call(running, "POST", "/auto-renew", body=consent, origin="https://evil.example"),
            call(running, "POST", "/auto-renew", body=consent, origin=None),
            call(running, "POST", "/auto-renew", body=consent, host=f"evil.example:{running.port}"),
        ]
        assert [(r.status, r.body) for r in refused] == [(403, {"error": "forbidden"})] * 3
        assert all("Access-Control-Allow-Origin" not in r.headers for r in refused)
        preflight = call(
            running,
            "OPTIONS",
            "/auto-renew",
            origin="https://evil.example",
            headers={"Access-Control-Request-Method": "POST"},
        )
        assert preflight.status == 403
        form = call(
            running,
            "POST",
            "/auto-renew",
            data=b"enable=true&consent=true",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status == 415
        for body in ({"enable": True}, {"enable": True, "consent": "yes"}, {"enable": 1}):
            reply = call(running, "POST", "/auto-renew", body=body)
            assert reply.status == 400, body
        no_consent = call(running, "POST", "/auto-renew", body={"enable": True, "consent": False})
        assert no_consent.body["status_code"] == "agent_consent_required"
        assert "[自動更新を設定する]をクリックしてください" in no_consent.body["message"]
        assert not units.exists() and read_log(log) == []  # nothing registered so far

        enabled = call(running, "POST", "/auto-renew", body=consent)
        assert (enabled.status, enabled.body) == (
            200,
            {"enabled": True, "message": "自動更新を設定しました。", "reports": []},
        )
        assert enabled.headers["Access-Control-Allow-Origin"] == SITE
        service = (units / "kihonet-auto-renew.service").read_text()
        assert (units / "kihonet-auto-renew.timer").is_file()
        assert call(running, "GET", "/auto-renew").body["enabled"] is True

        disabled = call(running, "POST", "/auto-renew", body={"enable": False})
        assert disabled.body == {
            "enabled": False,
            "message": "自動更新を解除しました。",
            "reports": [],  # no certificate held: nothing to tell the server
        }
        assert not any(units.iterdir())
        console = running.output_after_stop()
    assert "自動更新を設定しました。" in console and "自動更新を解除しました。" in console

    # The command line registers the very same run: one code path.
    cli = run_agent(
        "auto-renew", "--enable", "--yes", "--server", SITE, "--store", str(store),
        store=store, **env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert (units / "kihonet-auto-renew.service").read_text() == service
