"""The secret of the tool's own store: the OS keyring where there is one, else a password.

The keyring path runs with a real keyring backend, keyrings.alt's file keyring, chosen the way
keyring documents (``PYTHON_KEYRING_BACKEND``); its file lives in the test's own folder.  The
fallback runs where keyring finds no keyring, as on this headless machine (``fail`` backend).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import pkcs12

from issuance.client_tool import kihonet_agent as agent

from .helpers import (
    AGENT,
    ENROLL_FIELDS,
    FILE_KEYRING,
    PASSPHRASE,
    ThrowawayCA,
    agent_env,
    file_keyring,
    run_captured,
    stub_server,
)

NO_PASSPHRASE = ("KIHONET_AGENT_PASSPHRASE",)  # unset: the secret comes from a keyring or a prompt


def _run(*args: str, store: Path, input: str = "", unset=(), **extra: str):
    """The tool without a terminal (getpass then reads stdin), with some variables unset."""
    env = agent_env(store, **extra)
    for name in unset:
        env.pop(name, None)
    # No controlling terminal: getpass falls back to stdin.
    return run_captured(
        [sys.executable, str(AGENT), *args], env=env, input=input, start_new_session=True
    )


def _enroll(server: str, store: Path, **options):
    """``enroll`` with the stub's six fields, confirmed, installed in no browser."""
    return _run(
        "enroll",
        "--server",
        server,
        *ENROLL_FIELDS,
        "--yes",
        "--no-install",
        store=store,
        **options,
    )


def _renew(server: str, store: Path, **options):
    return _run("renew", "--server", server, "--no-install", store=store, **options)


def test_keyring_holds_a_random_secret_made_on_first_use_and_no_password_is_asked(
    tmp_path: Path, ca: ThrowawayCA
):
    store, data_home = tmp_path / "store", tmp_path / "data"
    keyring_env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, "XDG_DATA_HOME": str(data_home)}
    with stub_server(ca) as (server, _):
        enrolled = _enroll(server, store, unset=NO_PASSPHRASE, **keyring_env)
        assert enrolled.returncode == 0, enrolled.stderr
        assert "パスワード" not in enrolled.stdout + enrolled.stderr
        secret = file_keyring(data_home).get_password("kihonet-agent", str(store.resolve()))
        assert secret and len(secret) >= 40  # a random secret of the tool's, not the user's
        (info,) = agent.AgentStore(store).certificates()
        loaded = pkcs12.load_key_and_certificates(
            (store / f"{info.serial}.p12").read_bytes(), secret.encode()
        )
        assert loaded[1].serial_number == int(info.serial, 16)

        renewed = _renew(server, store, unset=NO_PASSPHRASE, **keyring_env)
    assert renewed.returncode == 0, renewed.stderr
    assert agent.RENEW_DONE_MESSAGE in renewed.stdout
    assert file_keyring(data_home).get_password("kihonet-agent", str(store.resolve())) == secret


def test_without_keyring_the_password_is_asked_after_saying_what_it_protects(
    tmp_path: Path, ca: ThrowawayCA
):
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        first = _enroll(
            server, store, input="my own password\nmy own password\n", unset=NO_PASSPHRASE
        )
        assert first.returncode == 0, first.stderr
        assert agent.NO_KEYRING_NOTICE in first.stderr.splitlines()
        assert "証明書の更新の際にも同じパスワードが必要になります" in agent.NO_KEYRING_NOTICE
        assert "秘密鍵を保護するもの" in agent.NO_KEYRING_NOTICE
        (info,) = agent.AgentStore(store).certificates()
        pkcs12.load_key_and_certificates(
            (store / f"{info.serial}.p12").read_bytes(), b"my own password"
        )
        wrong = _renew(server, store, input="a\nb\nc\n", unset=NO_PASSPHRASE)
        assert wrong.returncode == 1 and "パスワードが正しくありません。" in wrong.stderr
        renewed = _renew(server, store, input="my own password\n", unset=NO_PASSPHRASE)
    assert renewed.returncode == 0, renewed.stderr
    assert agent.NO_KEYRING_NOTICE in renewed.stderr


def test_without_keyring_kihonet_agent_passphrase_is_used(tmp_path: Path, ca: ThrowawayCA):
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        result = _run("enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=store)
    assert result.returncode == 0, result.stderr
    assert agent.NO_KEYRING_NOTICE in result.stderr
    (info,) = agent.AgentStore(store).certificates()
    pkcs12.load_key_and_certificates(
        (store / f"{info.serial}.p12").read_bytes(), PASSPHRASE.encode()
    )


def test_a_file_keyring_keyring_picks_by_itself_is_not_trusted(tmp_path: Path, ca: ThrowawayCA):
    """keyrings.alt's plaintext file is rated below 1: it is used only when chosen explicitly."""
    store = tmp_path / "store"
    with stub_server(ca) as (server, _):
        result = _enroll(
            server,
            store,
            unset=("PYTHON_KEYRING_BACKEND",),
            XDG_DATA_HOME=str(tmp_path / "data"),
            XDG_CONFIG_HOME=str(tmp_path / "config"),
        )
    assert result.returncode == 0, result.stderr
    assert agent.NO_KEYRING_NOTICE in result.stderr
    assert not (tmp_path / "data" / "python_keyring").exists()


def test_a_store_protected_by_a_password_keeps_using_it_when_a_keyring_appears(
    tmp_path: Path, ca: ThrowawayCA
):
    """A store made by the password version of the tool is not locked out by a new keyring."""
    store = tmp_path / "store"
    keyring_env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, "XDG_DATA_HOME": str(tmp_path / "d")}
    with stub_server(ca) as (server, _):
        made = _run("enroll", "--server", server, *ENROLL_FIELDS, "--yes", store=store)
        assert made.returncode == 0, made.stderr
        renewed = _run("renew", "--server", server, store=store, **keyring_env)
    assert renewed.returncode == 0, renewed.stderr
    assert file_keyring(tmp_path / "d").get_password("kihonet-agent", str(store.resolve())) is None


def test_without_the_keyring_library_the_single_file_script_uses_the_password(
    tmp_path: Path, ca: ThrowawayCA
):
    """The downloaded script on a PC without ``keyring`` installed falls back to the password."""
    store = tmp_path / "store"
    blocked = (
        "import runpy, sys; sys.modules['keyring'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = agent_env(
        store, PYTHON_KEYRING_BACKEND=FILE_KEYRING, XDG_DATA_HOME=str(tmp_path / "data")
    )
    with stub_server(ca) as (server, _):
        command = [sys.executable, "-c", blocked, str(AGENT), "enroll", "--server", server]
        result = run_captured([*command, *ENROLL_FIELDS, "--yes", "--no-install"], env=env)
    assert result.returncode == 0, result.stderr
    assert agent.NO_KEYRING_NOTICE in result.stderr
    assert not (tmp_path / "data" / "python_keyring").exists()
    (info,) = agent.AgentStore(store).certificates()
    pkcs12.load_key_and_certificates(
        (store / f"{info.serial}.p12").read_bytes(), PASSPHRASE.encode()
    )
