"""Linux: the certificate reaches the NSS database Chromium reads (real certutil/pk12util).

Every test runs the tool with ``HOME`` set to a folder of its own, then reads the database with
Debian's ``certutil`` as Chromium would: ``-L`` must list the certificate, ``-K`` its key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from issuance.client_tool import kihonet_agent as agent

from .helpers import ENROLL_FIELDS, PASSPHRASE, ThrowawayCA, run_agent, stub_server
from .nss import make_nss_database, nss_certificates, nss_keys, nss_serials, require_nss_tools

NICKNAME = "kihonet U000001 A123456789"


@pytest.fixture(autouse=True)
def _nss_tools() -> None:
    require_nss_tools()


def _held_key_id(store: Path, serial: str) -> str:
    key, _, _ = pkcs12.load_key_and_certificates(
        (store / f"{serial}.p12").read_bytes(), PASSPHRASE.encode()
    )
    return agent.key_id(key)


def _enroll(server: str, store: Path, **env: str):
    return run_agent("enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=store, **env)


def test_enroll_installs_into_the_xdg_nss_database_it_creates(tmp_path: Path, ca: ThrowawayCA):
    """Neither database exists: the XDG one Chromium 146+ reads is made and filled."""
    store, home = tmp_path / "store", tmp_path / "home"
    with stub_server(ca) as (server, _):
        result = _enroll(server, store)
    assert result.returncode == 0, result.stderr
    (info,) = agent.AgentStore(store).certificates()
    database = home / ".local" / "share" / "pki" / "nssdb"
    assert not (home / ".pki").exists()
    listing = nss_certificates(database)
    assert NICKNAME in listing and "u,u,u" in listing  # "u": the certificate has its key
    assert _held_key_id(store, info.serial) in nss_keys(database)
    assert nss_serials(database, NICKNAME) == [int(info.serial, 16)]
    assert (
        f"インストール先：Google Chrome / Chromium 用の証明書ストア（Linux NSS 共有データベース）"
        f"（{database}）" in result.stdout.splitlines()
    )
    # The tool's own store keeps the certificate too, and records where it went.
    assert (store / f"{info.serial}.p12").is_file()
    state = json.loads((store / "state.json").read_text(encoding="utf-8"))
    assert state["installed"][info.serial] == [
        {"store": "nss", "label": agent.NSS_LABEL, "location": str(database)}
    ]


def test_enroll_uses_the_legacy_pki_nssdb_when_it_exists(tmp_path: Path, ca: ThrowawayCA):
    store, home = tmp_path / "store", tmp_path / "home"
    legacy = make_nss_database(home / ".pki" / "nssdb")
    with stub_server(ca) as (server, _):
        result = _enroll(server, store)
    assert result.returncode == 0, result.stderr
    assert NICKNAME in nss_certificates(legacy)
    assert not (home / ".local" / "share" / "pki").exists()


def test_enroll_honours_xdg_data_home(tmp_path: Path, ca: ThrowawayCA):
    store, data_home = tmp_path / "store", tmp_path / "data"
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, XDG_DATA_HOME=str(data_home))
    assert result.returncode == 0, result.stderr
    assert NICKNAME in nss_certificates(data_home / "pki" / "nssdb")


def test_each_firefox_profile_found_gets_the_certificate(tmp_path: Path, ca: ThrowawayCA):
    store, home = tmp_path / "store", tmp_path / "home"
    profile = make_nss_database(home / ".mozilla" / "firefox" / "abcd1234.default-release")
    (home / ".mozilla" / "firefox" / "not-a-profile").mkdir()
    with stub_server(ca) as (server, _):
        result = _enroll(server, store)
    assert result.returncode == 0, result.stderr
    assert NICKNAME in nss_certificates(profile)
    (info,) = agent.AgentStore(store).certificates()
    assert _held_key_id(store, info.serial) in nss_keys(profile)
    assert (
        "インストール先：Mozilla Firefox の証明書ストア（プロファイル abcd1234.default-release）"
        f"（{profile}）" in result.stdout
    )


def test_no_install_leaves_the_browser_store_alone(tmp_path: Path, ca: ThrowawayCA):
    store, home = tmp_path / "store", tmp_path / "home"
    with stub_server(ca) as (server, _):
        result = run_agent(
            "enroll", "--server", server, *ENROLL_FIELDS, "--yes", "--no-install", store=store
        )
    assert result.returncode == 0, result.stderr
    assert not (home / ".local").exists() and "インストール先" not in result.stdout
    assert len(agent.AgentStore(store).certificates()) == 1


def test_r14_refused_install_says_admin_rights_keeps_the_certificate_and_install_retries(
    tmp_path: Path, unwritable_dir: Path, ca: ThrowawayCA
):
    """R14: the browser's store refuses; the tool says so, keeps it, ``install SERIAL`` retries."""
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        refused = _enroll(server, store, HOME=str(unwritable_dir))
    assert refused.returncode == agent.EXIT_NOT_INSTALLED, refused.stderr
    assert agent.ENROLL_DONE_MESSAGE in refused.stdout
    assert agent.ADMIN_REQUIRED_MESSAGE in refused.stderr.splitlines()
    (info,) = agent.AgentStore(store).certificates()
    assert f"「install {info.serial}」で、もう一度インストールできます。" in refused.stderr
    assert (store / f"{info.serial}.p12").is_file()

    home = tmp_path / "home-with-rights"
    retried = run_agent("install", info.serial.lower(), store=store, HOME=str(home))
    assert retried.returncode == 0, retried.stderr
    database = home / ".local" / "share" / "pki" / "nssdb"
    assert _held_key_id(store, info.serial) in nss_keys(database)
    assert f"インストール先：{agent.NSS_LABEL}（{database}）" in retried.stdout
    listed = run_agent("list", store=store, HOME=str(home))
    assert f"  インストール先：{agent.NSS_LABEL}（{database}）" in listed.stdout.splitlines()


def test_install_of_an_unknown_serial_is_refused(tmp_path: Path):
    result = run_agent("install", "ABC123", store=tmp_path / "store")
    assert result.returncode == 1
    assert "指定された証明書が見つかりません。" in result.stderr


def test_renewal_installs_the_new_certificate_then_removes_the_renewed_one(
    tmp_path: Path, ca: ThrowawayCA
):
    """After a renewal the browser holds only the new key; the tool's store keeps both."""
    store, home = tmp_path / "store", tmp_path / "home"
    database = home / ".local" / "share" / "pki" / "nssdb"
    with stub_server(ca) as (server, _):
        assert _enroll(server, store).returncode == 0
        (old,) = agent.AgentStore(store).certificates()
        renewed = run_agent("renew", "--server", server, store=store)
    assert renewed.returncode == 0, renewed.stderr
    new = next(i for i in agent.AgentStore(store).certificates() if i.serial != old.serial)
    keys = nss_keys(database)
    assert _held_key_id(store, new.serial) in keys
    assert _held_key_id(store, old.serial) not in keys
    assert (store / f"{old.serial}.p12").is_file() and (store / f"{new.serial}.p12").is_file()
    listed = run_agent("list", store=store)
    lines = listed.stdout.splitlines()
    old_line = next(i for i, line in enumerate(lines) if line.startswith(old.serial))
    assert lines[old_line].endswith("状態：更新済み")
    # The line after the old certificate's (none when it is listed last) names no install place.
    assert not any(
        line.startswith("  インストール先") for line in lines[old_line + 1 : old_line + 2]
    )


def test_missing_nss_tools_are_named_and_the_certificate_is_kept(tmp_path: Path, ca):
    store, empty_path = tmp_path / "store", tmp_path / "no-tools"
    empty_path.mkdir()
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, PATH=str(empty_path))
    assert result.returncode == agent.EXIT_NOT_INSTALLED
    assert "証明書ストアの操作に必要なプログラム（certutil）が見つかりません。" in result.stderr
    (info,) = agent.AgentStore(store).certificates()
    assert (store / f"{info.serial}.p12").is_file()


def test_r14_a_read_only_nss_database_says_admin_rights(tmp_path: Path, ca: ThrowawayCA):
    """A database the user cannot write (e.g. made by an administrator): NSS says READ_ONLY."""
    store, home = tmp_path / "store", tmp_path / "home"
    database = make_nss_database(home / ".pki" / "nssdb")
    files = [database / "cert9.db", database / "key4.db", database]
    if (
        shutil.which("chattr") is None
        or subprocess.run(
            ["chattr", "+i", *map(str, files)], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("chattr +i is not available here")
    try:
        with stub_server(ca) as (server, _):
            result = _enroll(server, store)
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False)
    assert result.returncode == agent.EXIT_NOT_INSTALLED, result.stderr
    assert agent.ADMIN_REQUIRED_MESSAGE in result.stderr.splitlines()
    assert NICKNAME not in nss_certificates(database)
    assert len(agent.AgentStore(store).certificates()) == 1
