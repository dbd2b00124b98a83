"""The client side: a certificate is not lost when its answer is lost.

The tool keeps the new key (encrypted with the store's secret) and the request on disk before
it sends the CSR; when the answer does not come it sends the same request again, then or on
its next start.  The stand-in server models the retry-safe server (the same token or renewal
with the same CSR gets the same certificate and the same JSON) and, with ``retry_safe=False``,
the server as it was (a used token answers 404).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from issuance.client_tool import kihonet_agent as agent

from .helpers import (
    AGENT,
    ENROLL_FIELDS,
    PASSPHRASE,
    ThrowawayCA,
    agent_env,
    run_agent,
    stub_server,
)
from .nss import nss_keys, require_nss_tools

CERTIFICATE_PATH_END = "/certificate"


def _spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _csr_requests(state, suffix: str = CERTIFICATE_PATH_END) -> list[dict]:
    return [body for path, body in state.requests if path.endswith(suffix) and "csr" in body]


def _pending(store: Path) -> list[dict]:
    folder = store / "pending"
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []


def _enroll(server: str, store: Path, *more: str):
    return run_agent("enroll", "--server", server, *ENROLL_FIELDS, "--yes", *more, store=store)


def _killed_at_the_csr(server: str, state, store: Path, *args: str) -> None:
    """Run the tool and ``kill -9`` it when its CSR reaches the server (before the answer)."""
    process: dict[str, subprocess.Popen] = {}

    def kill(path: str, body: dict) -> None:
        if "pid" not in process:
            return
        os.kill(process["pid"].pid, signal.SIGKILL)
        process["pid"].wait(timeout=10)
        process.pop("pid")

    state.on_csr = kill
    listed_before = len(state.requests)
    process["pid"] = subprocess.Popen(
        [sys.executable, str(AGENT), *args, "--server", server],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=agent_env(store),
    )
    try:
        assert process["pid"].wait(timeout=60) == -signal.SIGKILL
    finally:
        state.on_csr = None
    # The stand-in goes on to answer the killed tool's request: wait until it has, so that what
    # it issued is recorded before the test looks (the request is listed under the same lock).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        "csr" in body for _, body in state.requests[listed_before:]
    ):
        time.sleep(0.01)
    with state.lock:
        pass


def test_the_new_key_is_on_disk_encrypted_before_the_csr_is_sent(tmp_path: Path, ca):
    store = tmp_path / "store"
    seen: list[tuple[bool, bool]] = []

    def check(path: str, body: dict) -> None:
        (entry,) = _pending(store)
        key = serialization.load_pem_private_key(entry["key"].encode(), PASSPHRASE.encode())
        csr = x509.load_pem_x509_csr(body["csr"].encode())
        seen.append(
            (_spki(key.public_key()) == _spki(csr.public_key()), entry["csr"] == body["csr"])
        )
        assert "ENCRYPTED PRIVATE KEY" in entry["key"]
        token = path.split("/")[4]
        text = (store / "pending" / f"{entry['id']}.json").read_text()
        assert token not in text  # the one-time token is kept encrypted too
        assert agent.AgentStore(store, passphrase=PASSPHRASE).unseal(entry["token"]) == token

    with stub_server(ca) as (server, state):
        state.on_csr = check
        result = _enroll(server, store, "--no-install")
    assert result.returncode == 0, result.stderr
    assert seen == [(True, True)]
    assert _pending(store) == []  # answered: nothing left to resume


def test_a_dropped_answer_is_retried_with_the_same_key_and_csr(tmp_path: Path, ca: ThrowawayCA):
    """Needs the retry-safe server: the identical POST must return the same certificate."""
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        state.drop_answers = 1
        result = _enroll(server, store, "--no-install")
    assert result.returncode == 0, result.stderr
    first, second = _csr_requests(state)
    assert first == second  # the same CSR, so the same key
    assert len(state.issued) == 1  # one certificate
    (info,) = agent.AgentStore(store).certificates()
    issued = x509.load_pem_x509_csr(state.issued[0].encode())
    held = agent.AgentStore(store, passphrase=PASSPHRASE).load(info.serial)
    assert _spki(held.key.public_key()) == _spki(issued.public_key())
    assert _pending(store) == []


def test_a_killed_tool_resumes_on_its_next_start_and_installs(tmp_path: Path, ca: ThrowawayCA):
    """``kill -9`` after the CSR was sent; the next ``enroll`` sends the same request again."""
    require_nss_tools()
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        _killed_at_the_csr(server, state, store, "enroll", *ENROLL_FIELDS, "--yes")
        assert len(state.issued) == 1  # the server issued; the tool never read the answer
        (kept,) = _pending(store)
        assert kept["kind"] == "enroll" and kept["server"] == server
        assert agent.AgentStore(store).certificates() == []

        resumed = _enroll(server, store)
    assert resumed.returncode == 0, resumed.stderr
    assert "中断していた証明書の取得を再開し、完了しました。" in resumed.stdout
    first, again = _csr_requests(state)
    assert first == again and again["csr"] == kept["csr"]
    assert len(state.issued) == 1
    enrollments = [path for path, _ in state.requests if path == "/api/v1/enrollments"]
    assert len(enrollments) == 1  # no new enrollment was started
    (info,) = agent.AgentStore(store).certificates()
    held = agent.AgentStore(store, passphrase=PASSPHRASE).load(info.serial)
    database = tmp_path / "home" / ".local" / "share" / "pki" / "nssdb"
    assert agent.key_id(held.key) in nss_keys(database)
    assert _pending(store) == []


def test_serve_resumes_kept_requests_when_it_starts(tmp_path: Path, ca: ThrowawayCA):
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        _killed_at_the_csr(server, state, store, "enroll", *ENROLL_FIELDS, "--yes")
        process = subprocess.Popen(
            [sys.executable, str(AGENT), "serve", "--server", server, "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=agent_env(store),
        )
        try:
            lines = []
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith(agent.READY_MESSAGE):
                    break
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert "中断していた証明書の取得を再開し、完了しました。" in lines
    assert lines.index("中断していた証明書の取得を再開し、完了しました。") < lines.index(
        agent.READY_MESSAGE
    )
    assert len(state.issued) == 1 and len(agent.AgentStore(store).certificates()) == 1


def test_when_no_answer_comes_at_all_the_request_is_kept_for_the_next_start(
    tmp_path: Path, ca: ThrowawayCA
):
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        state.drop_answers = 10
        lost = _enroll(server, store, "--no-install")
        assert lost.returncode == 1
        assert agent.ANSWER_LOST_MESSAGE in lost.stderr
        assert "agent_answer_lost" in lost.stderr
        assert len(_csr_requests(state)) == 1 + len(agent.RETRY_DELAYS_SECONDS)
        (kept,) = _pending(store)
        still_lost = _enroll(server, store, "--no-install")
        assert still_lost.returncode == 1
        assert "中断していた証明書の取得を再開できませんでした。" in still_lost.stderr
        assert _pending(store) == [kept]
        state.drop_answers = 0
        resumed = _enroll(server, store, "--no-install")
    assert resumed.returncode == 0, resumed.stderr
    assert {body["csr"] for body in _csr_requests(state)} == {kept["csr"]}
    assert len(state.issued) == 1 and len(agent.AgentStore(store).certificates()) == 1


def test_renewal_answer_dropped_is_retried_with_the_same_csr(tmp_path: Path, ca: ThrowawayCA):
    """Needs the retry-safe server for renewals (same renewal, same CSR: same certificate)."""
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        assert _enroll(server, store, "--no-install").returncode == 0
        (old,) = agent.AgentStore(store).certificates()
        state.drop_answers = 1
        renewed = run_agent("renew", "--server", server, "--no-install", store=store)
    assert renewed.returncode == 0, renewed.stderr
    first, second = _csr_requests(state, "/api/v1/renewals")
    assert first == second
    assert len(state.issued) == 2  # the enrollment's and one renewal
    assert len(agent.AgentStore(store).certificates()) == 2
    assert agent.AgentStore(store).renewed_by(old.serial) is not None


def test_a_renewal_killed_after_its_csr_resumes_with_the_same_key(tmp_path: Path, ca):
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        assert _enroll(server, store, "--no-install").returncode == 0
        (old,) = agent.AgentStore(store).certificates()
        _killed_at_the_csr(server, state, store, "renew", "--serial", old.serial)
        (kept,) = _pending(store)
        assert kept["kind"] == "renew" and kept["serial"] == old.serial
        resumed = run_agent(
            "renew", "--server", server, "--serial", old.serial, "--no-install", store=store
        )
    assert resumed.returncode == 0, resumed.stderr
    assert "中断していた証明書の更新を再開し、完了しました。" in resumed.stdout
    csrs = {body["csr"] for body in _csr_requests(state, "/api/v1/renewals")}
    assert csrs == {kept["csr"]}
    assert len(state.issued) == 2 and len(agent.AgentStore(store).certificates()) == 2


def test_with_a_server_that_is_not_retry_safe_the_loss_is_said_and_nothing_is_kept(
    tmp_path: Path, ca: ThrowawayCA
):
    """The server as it was: the retry of a used token answers 404, and the tool says so."""
    store = tmp_path / "store"
    with stub_server(ca) as (server, state):
        state.drop_answers, state.retry_safe = 1, False
        result = _enroll(server, store, "--no-install")
    assert result.returncode == 1
    assert "受付情報が見つかりません（ステータスコード：3450）" in result.stderr
    first, second = _csr_requests(state)
    assert first == second
    assert _pending(store) == [] and agent.AgentStore(store).certificates() == []
