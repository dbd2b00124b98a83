"""The command line: ``list``, ``enroll``, ``renew``, ``--version``, standalone use."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from issuance.client_tool import kihonet_agent as agent

from .helpers import (
    AGENT,
    ENROLL_FIELDS,
    PASSPHRASE,
    REPO,
    STUB_FIELDS,
    ThrowawayCA,
    agent_env,
    run_agent,
    stub_server,
    tls_server_context,
)


def _fill(store: Path, ca: ThrowawayCA, *specs: tuple[str, str, datetime, int]) -> list[str]:
    holder = agent.AgentStore(store, passphrase=PASSPHRASE)
    serials = []
    for user_id, management_number, start, days in specs:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = ca.issue(
            key.public_key(),
            user_id=user_id,
            management_number=management_number,
            not_before=start,
            days=days,
        )
        serials.append(holder.install(key, certificate, ca.chain).serial)
    return serials


def test_list_command_output(store_dir: Path, ca: ThrowawayCA):
    start = datetime(2024, 11, 28, 15, 0, tzinfo=UTC)  # 2024-11-29 00:00 JST
    old = datetime.now(UTC) - timedelta(days=400)
    valid, expired = _fill(
        store_dir, ca, ("U000001", "A123456789", start, 1825), ("U000009", "Z999999999", old, 365)
    )
    result = run_agent("list", "--store", str(store_dir), store=store_dir / "unused")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{expired}  ユーザーID：U000009  管理番号：Z999999999  有効期限："
        f"{agent.format_japanese_date(old + timedelta(days=365))}  状態：期限切れ",
        f"{valid}  ユーザーID：U000001  管理番号：A123456789  有効期限：2029年11月28日"
        "  状態：不明（サーバーで確認できませんでした）",
    ]


def test_list_uses_kihonet_agent_home_and_needs_no_password(store_dir: Path, ca: ThrowawayCA):
    (serial,) = _fill(store_dir, ca, ("U000001", "A123456789", datetime.now(UTC), 30))
    result = run_agent("list", store=store_dir, KIHONET_AGENT_PASSPHRASE="")
    assert result.returncode == 0 and result.stdout.startswith(serial)
    empty = run_agent("list", store=store_dir / "empty")
    assert empty.stdout.strip() == "保管されている証明書はありません。"


def test_version_as_script_and_as_module(tmp_path: Path):
    as_script = run_agent("--version", store=tmp_path)
    assert as_script.stdout.strip() == f"kihonet_agent.py {agent.__version__}"
    as_module = subprocess.run(
        [sys.executable, "-m", "issuance.client_tool.kihonet_agent", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=agent_env(tmp_path),
        check=False,
    )
    assert as_module.returncode == 0 and agent.__version__ in as_module.stdout


def test_single_file_needs_only_stdlib_cryptography_and_optionally_keyring(tmp_path: Path):
    tree = ast.parse(AGENT.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    # keyring is optional (imported inside a try): without it the tool asks for a password.
    assert imported - sys.stdlib_module_names == {"cryptography", "keyring"}
    # A copy alone in a folder, as a customer downloads it, still runs.
    copy = tmp_path / "download" / "kihonet_agent.py"
    copy.parent.mkdir()
    shutil.copy(AGENT, copy)
    result = subprocess.run(
        [sys.executable, str(copy), "list"],
        cwd=copy.parent,
        capture_output=True,
        text=True,
        env=agent_env(tmp_path / "s"),
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_enroll_command_with_yes(store_dir: Path, ca: ThrowawayCA):
    with stub_server(ca) as (server, state):
        result = run_agent("enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=store_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "Eメールアドレス：taro@example.jp" in out
    assert agent.EMAIL_CONFIRMATION_MESSAGE in out
    assert "クライアント証明書の作成が完了しました" in out
    (info,) = agent.AgentStore(store_dir).certificates()
    assert f"シリアル番号：{info.serial}" in out
    assert f"有効期限：{agent.format_japanese_date(info.not_after)}" in out
    token = _token(state)
    assert [path for path, _ in state.requests] == [
        "/api/v1/enrollments",
        f"/api/v1/enrollments/{token}/confirm",
        f"/api/v1/enrollments/{token}/certificate",
    ]
    assert state.requests[0][1] == STUB_FIELDS


def _token(state) -> str:
    (token,) = state.enrollments
    return token


def test_enroll_command_asks_before_confirming_the_address(store_dir: Path, ca: ThrowawayCA):
    with stub_server(ca) as (server, state):
        refused = run_agent(
            "enroll", "--server", server, *ENROLL_FIELDS, store=store_dir, input="n\n"
        )
        assert refused.returncode == 1
        assert agent.EMAIL_CONFIRMATION_MESSAGE in refused.stdout
        assert [path for path, _ in state.requests] == ["/api/v1/enrollments"]
        accepted = run_agent(
            "enroll", "--server", server, *ENROLL_FIELDS, store=store_dir, input="y\n"
        )
    assert accepted.returncode == 0, accepted.stderr
    assert "クライアント証明書の作成が完了しました" in accepted.stdout


def test_enroll_command_shows_the_server_error_and_status_code(store_dir: Path, ca):
    with stub_server(ca) as (server, _):
        result = run_agent(
            "enroll",
            "--server",
            server,
            *[v if v != "U000001" else "BAD0000" for v in ENROLL_FIELDS],
            "--yes",
            store=store_dir,
        )
    assert result.returncode == 1
    assert "入力情報エラー（ステータスコード：3420）" in result.stderr.splitlines()
    assert "user_id：一致しません。" in result.stderr
    assert not list(store_dir.glob("*.p12"))


def test_enroll_requires_server_unless_env_is_set(store_dir: Path):
    result = run_agent("enroll", *ENROLL_FIELDS, store=store_dir)
    assert result.returncode == 2 and "--server" in result.stderr
    result = run_agent(
        "enroll",
        *ENROLL_FIELDS,
        "--yes",
        store=store_dir,
        KIHONET_SERVER="http://kihonet.example.jp",
    )
    assert result.returncode == 1
    assert "サーバーのアドレスが正しくありません" in result.stderr  # plain http is refused


def test_renew_command_asks_which_certificate(store_dir: Path, ca: ThrowawayCA):
    now = datetime.now(UTC)
    first, second = _fill(
        store_dir, ca, ("U000001", "A123456789", now, 30), ("U000002", "B123456789", now, 60)
    )
    with stub_server(ca) as (server, _):
        result = run_agent("renew", "--server", server, store=store_dir, input="2\n")
    assert result.returncode == 0, result.stderr
    assert "ユーザーID：U000001  管理番号：A123456789" in result.stdout
    assert "ユーザーID：U000002  管理番号：B123456789" in result.stdout
    assert "クライアント証明書の更新が完了しました" in result.stdout
    held = agent.AgentStore(store_dir).certificates()
    assert len(held) == 3  # the old ones are kept
    (new,) = [info for info in held if info.serial not in (first, second)]
    assert new.user_id == "U000002"
    assert f"有効期限：{agent.format_japanese_date(new.not_after)}" in result.stdout


def test_renew_command_with_serial_and_rsa_key(store_dir: Path, ca: ThrowawayCA):
    """Certificates held with an RSA key are renewed with a PKCS#1 v1.5 signature."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = agent.AgentStore(store_dir, passphrase=PASSPHRASE).install(
        key, ca.issue(key.public_key()), ca.chain
    )
    with stub_server(ca) as (server, _):
        result = run_agent(
            "renew", "--server", server, "--serial", info.serial.lower(), store=store_dir
        )
    assert result.returncode == 0, result.stderr
    assert "クライアント証明書の更新が完了しました" in result.stdout


def test_r14_enroll_command_without_rights_prints_the_admin_message(unwritable_dir: Path, ca):
    with stub_server(ca) as (server, state):
        result = run_agent(
            "enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=unwritable_dir
        )
    assert result.returncode == 1
    assert agent.ADMIN_REQUIRED_MESSAGE in result.stderr
    assert "admin_required" in result.stderr
    assert state.requests == []


@pytest.mark.parametrize("command", ["serve", "renew"])
def test_wrong_password_is_refused(store_dir: Path, ca: ThrowawayCA, command: str):
    _fill(store_dir, ca, ("U000001", "A123456789", datetime.now(UTC), 30))
    result = run_agent(
        command,
        "--server",
        "https://kihonet.example.jp",
        store=store_dir,
        KIHONET_AGENT_PASSPHRASE="wrong",
    )
    assert result.returncode == 1
    assert "パスワードが正しくありません。" in result.stderr


def test_tls_is_verified_and_cafile_trusts_a_private_ca(tmp_path: Path, ca: ThrowawayCA):
    root = tmp_path / "root.pem"
    root.write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    store = tmp_path / "store"
    with stub_server(ca, tls=tls_server_context(ca, tmp_path)) as (server, state):
        untrusted = run_agent("enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=store)
        assert untrusted.returncode == 1
        assert "サーバー証明書を検証できません" in untrusted.stderr
        assert "agent_network" in untrusted.stderr
        assert state.requests == []
        with_option = run_agent(
            "enroll",
            "--server",
            server,
            *ENROLL_FIELDS,
            "--yes",
            "--cafile",
            str(root),
            store=store,
        )
        assert with_option.returncode == 0, with_option.stderr
        with_env = run_agent("renew", "--server", server, store=store, KIHONET_CAFILE=str(root))
        assert with_env.returncode == 0, with_env.stderr
    assert len(agent.AgentStore(store).certificates()) == 2


def test_list_asks_the_server_for_each_status(store_dir: Path, ca: ThrowawayCA):
    now = datetime.now(UTC)
    valid, revoked, renewed, unknown = _fill(
        store_dir,
        ca,
        ("U000001", "A123456789", now, 30),
        ("U000002", "B123456789", now, 60),
        ("U000003", "C123456789", now, 90),
        ("U000004", "D123456789", now, 120),
    )
    with stub_server(ca) as (server, state):
        state.statuses = {valid: "valid", revoked: "revoked", renewed: "renewed"}
        result = run_agent("list", "--server", server, store=store_dir)
    assert result.returncode == 0, result.stderr
    status = {line.split()[0]: line.rsplit("状態：", 1)[1] for line in result.stdout.splitlines()}
    assert status == {
        valid: "有効",
        revoked: "失効",
        renewed: "更新済み",
        unknown: "不明（サーバーで確認できませんでした）",  # the server does not know it
    }
    asked = [path for path, _ in state.requests]
    assert asked == [f"/api/v1/certificates/{s}/status" for s in (valid, revoked, renewed, unknown)]
