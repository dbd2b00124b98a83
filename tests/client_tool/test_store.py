"""The certificate store of the client tool: PKCS#12 files, permissions, R14."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from issuance.client_tool import kihonet_agent as agent

from .helpers import PASSPHRASE, ThrowawayCA


def _install(store: agent.AgentStore, ca: ThrowawayCA, **kwargs):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.issue(key.public_key(), **kwargs)
    return key, certificate, store.install(key, certificate, ca.chain)


def _private_value(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(32, "big")


def test_pkcs12_opens_with_the_password_and_holds_key_certificate_and_chain(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    key, certificate, info = _install(store, ca, user_id="U000001", management_number="A123456789")

    loaded = pkcs12.load_pkcs12(
        (store_dir / f"{info.serial}.p12").read_bytes(), PASSPHRASE.encode()
    )
    assert loaded.key is not None
    assert _private_value(loaded.key) == _private_value(key)
    assert loaded.cert.certificate == certificate
    assert loaded.cert.friendly_name == b"kihonet U000001 A123456789"
    assert [c.certificate for c in loaded.additional_certs] == ca.chain

    plain_key, plain_cert, plain_chain = pkcs12.load_key_and_certificates(
        (store_dir / f"{info.serial}.p12").read_bytes(), PASSPHRASE.encode()
    )
    assert plain_cert == certificate and plain_key is not None and len(plain_chain) == 2
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(
            (store_dir / f"{info.serial}.p12").read_bytes(), b"wrong password"
        )


def test_pkcs12_uses_pbes2_aes256(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _, _, info = _install(store, ca)
    der = (store_dir / f"{info.serial}.p12").read_bytes()
    aes256_cbc_oid = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
    pbes2_oid = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
    assert aes256_cbc_oid in der and pbes2_oid in der


def test_private_key_is_never_on_disk_unencrypted(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    key, _, info = _install(store, ca)
    secret = _private_value(key)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    files = sorted(p.name for p in store_dir.iterdir())
    assert files == [f"{info.serial}.p12", f"{info.serial}.pem"]  # no temporary files left
    for path in store_dir.iterdir():
        content = path.read_bytes()
        assert secret not in content and pkcs8 not in content
        assert b"PRIVATE KEY" not in content
    assert b"PRIVATE" not in (store_dir / f"{info.serial}.pem").read_bytes()


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_store_folder_is_0700_and_files_0600(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _, _, info = _install(store, ca)
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    for suffix in ("p12", "pem"):
        assert stat.S_IMODE((store_dir / f"{info.serial}.{suffix}").stat().st_mode) == 0o600


def test_serial_is_uppercase_hex_without_leading_zeros(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _, _, info = _install(store, ca, serial=0x00AB_CDEF_0123)
    assert info.serial == "ABCDEF0123"
    assert (store_dir / "ABCDEF0123.p12").is_file()
    assert agent.normalize_serial("00:ab:cd:ef:01:23") == "ABCDEF0123"
    assert agent.normalize_serial("0xabcdef0123") == "ABCDEF0123"
    with pytest.raises(agent.BadRequest):
        agent.normalize_serial("../../etc/passwd")


def test_load_and_listing_parse_the_subject(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _key, certificate, info = _install(
        store, ca, user_id="U000002", management_number="B987654321", kihonet_code="87654321"
    )
    assert (info.user_id, info.management_number, info.kihonet_code) == (
        "U000002",
        "B987654321",
        "87654321",
    )
    held = store.load(info.serial.lower())
    assert held.certificate == certificate and len(held.chain) == 2
    assert [i.serial for i in agent.AgentStore(store_dir).certificates()] == [info.serial]
    with pytest.raises(agent.WrongPassphrase):
        agent.AgentStore(store_dir, passphrase="nope").load(info.serial)
    with pytest.raises(agent.CertificateNotFound):
        store.load("ABC")


def test_passphrase_from_environment_is_checked_against_the_store(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _install(store, ca)
    fresh = agent.AgentStore(store_dir)
    assert agent.obtain_passphrase(fresh, environ={agent.ENV_PASSPHRASE: PASSPHRASE}) == PASSPHRASE
    with pytest.raises(agent.WrongPassphrase):
        agent.obtain_passphrase(fresh, environ={agent.ENV_PASSPHRASE: "wrong"})
    with pytest.raises(agent.WrongPassphrase):
        agent.obtain_passphrase(fresh, environ={agent.ENV_PASSPHRASE: ""})


def test_new_store_asks_the_password_twice(store_dir):
    answers = iter(["secret-1", "secret-2", "", "secret-3", "secret-3"])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    store = agent.AgentStore(store_dir)
    assert agent.obtain_passphrase(store, environ={}, prompt=prompt) == "secret-3"
    assert len(asked) == 5  # mismatch, empty, then a matching pair


def test_japanese_dates_are_in_japan_time():
    assert (
        agent.format_japanese_date(datetime(2029, 11, 28, 14, 59, 59, tzinfo=UTC))
        == "2029年11月28日"
    )
    assert (
        agent.format_japanese_date(datetime(2029, 11, 28, 15, 0, 0, tzinfo=UTC)) == "2029年11月29日"
    )


def test_expired_flag(store_dir, ca):
    store = agent.AgentStore(store_dir, passphrase=PASSPHRASE)
    _install(store, ca, not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    (info,) = store.certificates()
    assert info.to_json()["expired"] is True


def test_r14_install_without_rights_says_admin_rights_are_needed(unwritable_dir: Path, ca):
    store = agent.AgentStore(unwritable_dir, passphrase=PASSPHRASE)
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(agent.AdminRightsRequired) as raised:
        store.install(key, ca.issue(key.public_key()), ca.chain)
    assert raised.value.message == agent.ADMIN_REQUIRED_MESSAGE
    assert raised.value.status_code == "admin_required"
    with pytest.raises(agent.AdminRightsRequired):
        store.ensure_writable()


def test_r14_store_folder_that_cannot_be_created(unwritable_dir: Path):
    with pytest.raises(agent.AdminRightsRequired):
        agent.AgentStore(unwritable_dir / "kihonet").create()


def test_other_write_failures_are_reported_not_swallowed(tmp_path: Path, ca):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    store = agent.AgentStore(not_a_folder / "store", passphrase=PASSPHRASE)
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(agent.StoreWriteError) as raised:
        store.install(key, ca.issue(key.public_key()), ca.chain)
    assert "保存できませんでした" in raised.value.message


def test_server_origin_and_url_rules():
    assert agent.server_origin("https://Kihonet.Example.jp/app/") == "https://kihonet.example.jp"
    assert agent.server_origin("https://kihonet.example.jp:443") == "https://kihonet.example.jp"
    assert (
        agent.server_origin("https://kihonet.example.jp:8443/") == "https://kihonet.example.jp:8443"
    )
    assert agent.server_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for bad in ("http://kihonet.example.jp", "ftp://x", "kihonet.example.jp", ""):
        with pytest.raises(agent.BadRequest):
            agent.validate_server_url(bad)
