"""R06, R07, R09, R12 with a real browser and a real server: nginx from deploy/ in front of the
live server, the client tool's ``enroll`` installing into the NSS database of a fresh HOME, and
Debian's Chromium with that HOME presenting the certificate from its store.

Chromium picks a client certificate without a dialog only with an auto-select rule; the rule
is written into the fresh profile's ``Default/Preferences`` (never into a system policy folder).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.utils import timezone

from issuance import audit, ca, roles
from issuance.client_tool.kihonet_agent import AgentStore
from issuance.models import Certificate
from issuance.pki.profile import add_years
from issuance.rules.renewal import is_in_renewal_window
from issuance.services.certificates import issue_certificate
from issuance.services.desk_actions import revoke_for_desk
from tests.backoffice.helpers import make_staff
from tests.conftest import require
from tests.csr import make_csr
from tests.factories import make_customer, make_notice, make_user
from tests.issuance.test_client_tool_executable import enroll_arguments
from tests.production.test_nginx_end_to_end import LOGIN_HOST, PASSWORD, TOOL, site

__all__ = ["site"]  # the nginx fixture of test_nginx_end_to_end, reused

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 20_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def nss_databases(home: Path) -> list[Path]:
    """The shared NSS databases Chromium may read in ``home`` (see the browser-store note)."""
    return [
        folder
        for folder in (home / ".pki" / "nssdb", home / ".local" / "share" / "pki" / "nssdb")
        if (folder / "cert9.db").is_file()
    ]


def nss_serials(home: Path) -> set[int]:
    """Serial numbers of the certificates with their key in the NSS database of ``home``."""
    (database,) = nss_databases(home)
    listing = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{database}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    serials = set()
    for line in listing.stdout.splitlines()[4:]:
        nickname = line.rsplit(None, 1)[0].strip() if line.strip() else ""
        if not nickname:
            continue
        pem = subprocess.run(
            ["certutil", "-L", "-d", f"sql:{database}", "-n", nickname, "-a"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        for certificate in x509.load_pem_x509_certificates(pem):
            if not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                serials.add(certificate.serial_number)
    return serials


def tool_env(home: Path, site) -> dict[str, str]:
    """The customer's session: only HOME says where things go (no XDG_*, no KIHONET_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIHONET_", "XDG_", "DBUS_"))}
    env.update(
        HOME=str(home),
        KIHONET_AGENT_PASSPHRASE=PASSWORD,
        KIHONET_CAFILE=str(site["tls_ca"]),
        NO_PROXY="*",
        PYTHONIOENCODING="utf-8",
    )
    return env


def run_tool(site, home: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(TOOL), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=tool_env(home, site),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def spki_pin(certificate_path: Path) -> str:
    """base64 SHA-256 of the server certificate's public key, for Chromium to trust it."""
    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def issuer_common_name(certificate: Certificate) -> str:
    parsed = x509.load_pem_x509_certificate(certificate.pem.encode())
    return parsed.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


class Chromium:
    """Debian's Chromium, headless, with a fresh profile whose auto-select rule picks our
    issuing CA's certificate for the login check, and ``HOME`` set to the customer's."""

    def __init__(self, playwright, site, home: Path, issuer_cn: str) -> None:
        self.site = site
        self.origin = f"https://{LOGIN_HOST}:{site['port']}"
        profile = home / "chromium-profile"
        (profile / "Default").mkdir(parents=True, exist_ok=True)
        rule = {"setting": {"filters": [{"ISSUER": {"CN": issuer_cn}}]}}
        preferences = {
            "profile": {
                "content_settings": {
                    "exceptions": {"auto_select_certificate": {f"{self.origin},*": rule}}
                }
            }
        }
        (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
        env = tool_env(home, site)
        self.context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=shutil.which("chromium"),
            headless=True,
            env=env,
            locale="ja-JP",
            timezone_id="Asia/Tokyo",
            viewport={"width": 1280, "height": 900},
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                f"--host-resolver-rules=MAP {LOGIN_HOST} 127.0.0.1",
                f"--ignore-certificate-errors-spki-list={spki_pin(site['dir'] / 'server.pem')}",
            ],
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()

    def login_check(self, name: str) -> tuple[int, str]:
        response = self.page.goto(f"{self.origin}/login-check/")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"browser-end-to-end-{name}.png"))
        return response.status, self.page.locator("main").inner_text()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def static_files(site, settings):
    """The collected static files nginx serves (the template's ``/static/`` location)."""
    settings.STATIC_ROOT = site["dir"] / "static"
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def playwright(monkeypatch, static_files):
    require(shutil.which("chromium") is not None, "Chromium")
    require(shutil.which("certutil") is not None, "certutil (Debian package libnss3-tools)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as driver:
        try:
            yield driver
        finally:
            # ORM calls made while Playwright's loop was current hold their own connections.
            connections.close_all()


def desk_revokes(certificate: Certificate) -> None:
    supervisor = make_staff(roles.SUPERVISOR)
    revoke_for_desk(
        certificate,
        reason="keyCompromise",
        note="パソコンの紛失（お客様からの電話）",
        actor=audit.Actor.staff_user(supervisor),
    )


def test_r06_r07_enrolled_certificate_logs_in_from_chromium_and_is_refused_once_revoked(
    site, playwright, tmp_path
):
    """``enroll`` installs into the fresh HOME's NSS database; Chromium with that HOME
    presents it and the login check greets the user (R07); after the desk revokes it, the CRL
    file is rewritten, nginx reloads and the same browser is refused in Japanese."""
    home = tmp_path / "home"
    home.mkdir()
    notice = make_notice()
    user = notice.user
    result = run_tool(site, home, *enroll_arguments(notice, f"https://localhost:{site['port']}"))
    assert "クライアント証明書の作成が完了しました" in result.stdout
    assert "インストール先：Google Chrome / Chromium 用の証明書ストア" in result.stdout
    certificate = Certificate.objects.get(user=user)
    assert nss_serials(home) == {int(certificate.serial, 16)}

    browser = Chromium(playwright, site, home, issuer_common_name(certificate))
    try:
        status, text = browser.login_check("01-enrolled")
        assert status == 200, text
        assert f"ユーザーID {user.user_id}（管理番号 {user.management_number}）様" in text
        assert f"シリアル番号：{certificate.serial}" in text

        desk_revokes(certificate)
        crl = x509.load_pem_x509_crl((site["dir"] / "nginx-crl.pem").read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(int(certificate.serial, 16))
        site["nginx"].reload()
        status, text = browser.login_check("02-revoked")
        assert status == 403, text
        assert "このクライアント証明書は失効しているため、ログインできません。" in text
        assert "クライアント証明書の再発行手続きが必要です。" in text
    finally:
        browser.close()


def test_r09_r12_after_renewal_by_the_tool_chromium_presents_the_new_certificate(
    site, playwright, tmp_path
):
    """A certificate 10 days before expiry (R09), held by the tool and installed in the
    browser store; after ``renew`` the browser presents the new one and the login check
    names its serial."""
    home = tmp_path / "home"
    home.mkdir()
    customer = make_customer(started_using=True)
    user = make_user(customer)
    key, csr = make_csr()
    old = issue_certificate(
        user=user,
        csr_data=csr,
        actor=audit.Actor.system("test"),
        now=add_years(timezone.now(), -3) + timedelta(days=10),
    )
    assert is_in_renewal_window(old, timezone.now())
    material = ca.load()
    AgentStore(home / ".kihonet", PASSWORD).install(
        key,
        x509.load_pem_x509_certificate(old.pem.encode()),
        [material.issuing_cert, material.root_cert],
    )
    run_tool(site, home, "install", old.serial)
    assert nss_serials(home) == {int(old.serial, 16)}

    browser = Chromium(playwright, site, home, issuer_common_name(old))
    try:
        status, text = browser.login_check("03-before-renewal")
        assert status == 200, text
        assert f"シリアル番号：{old.serial}" in text

        run_tool(
            site,
            home,
            "renew",
            "--server",
            f"https://localhost:{site['port']}",
            "--serial",
            old.serial,
        )
        new = Certificate.objects.get(renewed_from=old)
        assert int(new.serial, 16) in nss_serials(home)
        status, text = browser.login_check("04-after-renewal")
        assert status == 200, text
        assert f"シリアル番号：{new.serial}" in text
        assert f"ユーザーID {user.user_id}（管理番号 {user.management_number}）様" in text
    finally:
        browser.close()
