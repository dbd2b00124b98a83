"""Windows and macOS stores, against stand-ins of their tools put first on PATH.

These backends cannot run on this machine: the stand-ins (tests/client_tool/standins.py) check
what they are handed, and the tests check the calls the tool makes and in which order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from issuance.client_tool import kihonet_agent as agent

from .helpers import ENROLL_FIELDS, PASSPHRASE, ThrowawayCA, run_agent, stub_server
from .standins import install_standins, read_log


@pytest.fixture
def standins(tmp_path: Path) -> dict[str, str]:
    """Env for the tool: the stand-ins first on PATH, their log."""
    folder = install_standins(tmp_path / "bin")
    log = tmp_path / "standin.log"
    return {
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_LOG": str(log),
    }


def _log(env: dict[str, str]) -> list[dict]:
    return read_log(Path(env["STANDIN_LOG"]))


def _held(store: Path, serial: str):
    return pkcs12.load_key_and_certificates(
        (store / f"{serial}.p12").read_bytes(), PASSPHRASE.encode()
    )


def _public_key_hex(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        .hex()
    )


def _enroll(server: str, store: Path, env: dict[str, str], platform: str, **extra: str):
    return run_agent(
        "enroll",
        "--server",
        server,
        *ENROLL_FIELDS,
        "--yes",
        store=store,
        KIHONET_AGENT_PLATFORM=platform,
        **env,
        **extra,
    )


def _enroll_refused_for_rights(ca: ThrowawayCA, store: Path, env: dict[str, str], platform: str):
    """``enroll`` while the system's store refuses for want of administrator rights (R14): the
    message says so and the certificate stays in the tool's store; its entry."""
    with stub_server(ca) as (server, _):
        refused = _enroll(server, store, env, platform, STANDIN_MODE="deny")
    assert refused.returncode == agent.EXIT_NOT_INSTALLED
    assert agent.ADMIN_REQUIRED_MESSAGE in refused.stderr.splitlines()
    (info,) = agent.AgentStore(store).certificates()
    assert (store / f"{info.serial}.p12").is_file()
    return info


def _enroll_and_renew(ca: ThrowawayCA, store: Path, env: dict[str, str], platform: str):
    """``enroll`` then ``renew`` on ``platform``; the renewed certificate's entry."""
    with stub_server(ca) as (server, _):
        assert _enroll(server, store, env, platform).returncode == 0
        (old,) = agent.AgentStore(store).certificates()
        renewed = run_agent(
            "renew", "--server", server, store=store, KIHONET_AGENT_PLATFORM=platform, **env
        )
    assert renewed.returncode == 0, renewed.stderr
    return old


def _check_handed(call: dict, store: Path) -> str:
    """The PKCS#12 handed over opened with its password and holds the held key + certificate."""
    assert "error" not in call, call
    handed = call["pkcs12"]
    key, certificate, _ = _held(store, handed["serial"])
    assert handed["serial"] == format(certificate.serial_number, "X")
    assert handed["public_key"] == _public_key_hex(key)
    assert handed["key_matches_certificate"]
    assert handed["friendly_name"] == "kihonet U000001 A123456789"
    assert handed["chain"] == [
        "CN=Test Issuing,O=Test Kihonet CA,C=JP",
        "CN=Test Root,O=Test Kihonet CA,C=JP",
    ]
    assert handed["file_mode"] == "0o600"
    return handed["serial"]


# --------------------------------------------------------------------------- Windows


def test_windows_enroll_imports_into_the_current_user_store_with_certutil(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, standins, "windows")
    assert result.returncode == 0, result.stderr
    (call,) = _log(standins)
    argv = call["argv"]
    assert argv[:2] == ["-user", "-p"] and argv[3] == "-importPFX" and argv[5] == "NoRoot"
    assert len(argv) == 6
    serial = _check_handed(call, store)
    assert call["pkcs12"]["aes"] and not call["pkcs12"]["triple_des"]
    assert not Path(argv[4]).exists()  # the temporary PKCS#12 is gone
    assert argv[2] != PASSPHRASE  # a one-time password, not the store's
    assert (
        "インストール先：Google Chrome / Microsoft Edge 用の証明書ストア（Windows 個人）"
        "（Cert:\\CurrentUser\\My）" in result.stdout.splitlines()
    )
    (info,) = agent.AgentStore(store).certificates()
    assert info.serial == serial


def test_windows_before_1709_gets_the_legacy_pkcs12(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, standins, "windows", STANDIN_MODE="no-aes")
    assert result.returncode == 0, result.stderr
    aes, legacy = _log(standins)
    assert aes["answered"] == "cannot read AES" and aes["pkcs12"]["aes"]
    assert legacy["pkcs12"]["triple_des"] and not legacy["pkcs12"]["aes"]
    _check_handed(legacy, store)


def test_windows_without_certutil_uses_import_pfxcertificate(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    """PowerShell gets the file and the password through its environment, not its arguments."""
    store = tmp_path / "store"
    only_powershell = tmp_path / "bin-ps"
    only_powershell.mkdir()
    (only_powershell / "powershell").symlink_to(tmp_path / "bin" / "powershell")
    env = {**standins, "PATH": str(only_powershell)}
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, env, "windows")
    assert result.returncode == 0, result.stderr
    (call,) = _log(env)
    assert call["tool"] == "powershell"
    assert call["argv"][:3] == ["-NoProfile", "-NonInteractive", "-Command"]
    script = call["argv"][3]
    assert "Import-PfxCertificate" in script and "Cert:\\CurrentUser\\My" in script
    assert call["env"]["KIHONET_PFX_PASSWORD"] not in " ".join(call["argv"])
    _check_handed(call, store)


def test_r14_windows_refusal_says_admin_rights_and_install_serial_retries(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store = tmp_path / "store"
    info = _enroll_refused_for_rights(ca, store, standins, "windows")
    assert len(_log(standins)) == 1  # a refusal for rights is not retried in another form

    retried = run_agent(
        "install", info.serial, store=store, KIHONET_AGENT_PLATFORM="windows", **standins
    )
    assert retried.returncode == 0, retried.stderr
    assert _check_handed(_log(standins)[-1], store) == info.serial


def test_windows_renewal_imports_the_new_certificate_before_deleting_the_renewed_one(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store = tmp_path / "store"
    old = _enroll_and_renew(ca, store, standins, "windows")
    first, second, third = _log(standins)
    assert _check_handed(first, store) == old.serial
    new_serial = _check_handed(second, store)
    assert new_serial != old.serial
    old_thumbprint = _held(store, old.serial)[1].fingerprint(hashes.SHA1()).hex().upper()
    assert third["argv"] == ["-user", "-delstore", "My", old_thumbprint]
    assert (store / f"{old.serial}.p12").is_file()  # the tool's store keeps both


# --------------------------------------------------------------------------- macOS


def test_macos_enroll_imports_the_legacy_pkcs12_into_the_login_keychain(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store, home = tmp_path / "store", tmp_path / "home"
    keychain = home / "Library" / "Keychains" / "login.keychain-db"
    with stub_server(ca) as (server, _):
        result = _enroll(server, store, standins, "macos")
    assert result.returncode == 0, result.stderr
    (call,) = _log(standins)
    argv = call["argv"]
    assert argv[0] == "import" and argv[2:6] == ["-k", str(keychain), "-f", "pkcs12"]
    assert argv[6] == "-P" and len(argv) == 8
    _check_handed(call, store)
    assert call["pkcs12"]["triple_des"] and not call["pkcs12"]["aes"]
    assert (
        "インストール先：Google Chrome / Safari 用の証明書ストア（macOS ログイン キーチェーン）"
        f"（{keychain}）" in result.stdout
    )


def test_r14_macos_refusal_says_admin_rights(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    _enroll_refused_for_rights(ca, tmp_path / "store", standins, "macos")


def test_macos_renewal_imports_then_deletes_the_renewed_identity(
    tmp_path: Path, ca: ThrowawayCA, standins: dict[str, str]
):
    store, home = tmp_path / "store", tmp_path / "home"
    keychain = str(home / "Library" / "Keychains" / "login.keychain-db")
    old = _enroll_and_renew(ca, store, standins, "macos")
    _, imported, deleted = _log(standins)
    assert imported["argv"][0] == "import" and _check_handed(imported, store) != old.serial
    old_sha1 = _held(store, old.serial)[1].fingerprint(hashes.SHA1()).hex().upper()
    assert deleted["argv"] == ["delete-identity", "-Z", old_sha1, keychain]


def test_unknown_platform_is_refused_in_japanese(tmp_path: Path, ca: ThrowawayCA):
    with stub_server(ca) as (server, state):
        result = _enroll(server, tmp_path / "store", {}, "beos")
    assert result.returncode == 1
    assert "環境変数 KIHONET_AGENT_PLATFORM の値が正しくありません：beos" in result.stderr
    assert state.requests == []  # said before anything reached the server
