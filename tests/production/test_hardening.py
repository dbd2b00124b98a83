"""Production settings, the login check's trust in the proxy, CSP and what the logs carry."""

import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.urls import reverse

from issuance import audit
from issuance.services.certificates import revoke_certificate
from kihonet.logging import RedactingFilter, redact
from tests.csr import foreign_certificate_pem, make_csr
from tests.factories import make_notice

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIHONET_", "DJANGO_"))}
    env.update(
        {
            "KIHONET_ENV": "production",
            "SECRET_KEY": "x" * 20 + "-production-secret-" + "y" * 20,
            "ALLOWED_HOSTS": "kihonet.example.jp",
            "KIHONET_BASE_URL": "https://kihonet.example.jp",
            "DATABASE_URL": "sqlite:////tmp/kihonet-deploy-check.sqlite3",
            "CACHE_URL": "redis://127.0.0.1:6379/9",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
            "EMAIL_HOST": "smtp.example.jp",
            "KIHONET_CA_PASSPHRASE": "unused",
        }
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_r17_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CELERY_BROKER_URL", "CACHE_URL", "EMAIL_HOST"])
def test_production_refuses_to_start_without_its_services(missing):
    env = production_env()
    del env[missing]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} " in result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy(client):
    policy = client.get(reverse("issuance:home"))["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy


def test_logs_carry_no_private_key_passphrase_token_or_full_email():
    key_pem = (
        make_csr()[0]
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    line = (
        f"Bad Request: /api/v1/enrollments/AbC-123_xyz/confirm user=taro.yamada@example.co.jp "
        f"passphrase=hunter2 token: s3cr3t {key_pem}"
    )
    cleaned = redact(line)
    assert "AbC-123_xyz" not in cleaned and "hunter2" not in cleaned and "s3cr3t" not in cleaned
    assert "PRIVATE KEY" not in cleaned and "taro.yamada" not in cleaned
    assert "t***@example.co.jp" in cleaned

    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Bad Request: %s",
        ("/api/v1/enrollments/TOKEN123/certificate",),
        None,
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "Bad Request: /api/v1/enrollments/***/certificate"


# --- /login-check/ behind the proxy (R06, R07) ----------------------------------------------


def certificate_headers(pem: str, verify: str = "SUCCESS") -> dict:
    return {"HTTP_X_SSL_CLIENT_VERIFY": verify, "HTTP_X_SSL_CLIENT_CERT": urllib.parse.quote(pem)}


@pytest.fixture
def issued(issuing_ca, settings):
    from issuance.services.certificates import issue_certificate

    settings.KIHONET_TRUSTED_PROXIES = ["127.0.0.1"]
    notice = make_notice()
    return issue_certificate(
        user=notice.user, notice=notice, csr_data=make_csr()[1], actor=audit.Actor.system("test")
    )


@pytest.mark.django_db
def test_r06_login_check_greets_the_user_by_user_id_and_management_number(client, issued):
    response = client.get(reverse("issuance:login-check"), **certificate_headers(issued.pem))
    page = response.content.decode()
    assert response.status_code == 200
    assert f"ユーザーID {issued.user.user_id}（管理番号 {issued.user.management_number}）様" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        ("FAILED:certificate revoked", "失効"),
        ("FAILED:certificate has expired", "有効期限が切れている"),
        ("FAILED:unable to get local issuer certificate", "企保ネットのクライアント証明書ではない"),
        ("NONE", "提示されていません"),
    ],
)
def test_r07_login_check_says_why_in_japanese(client, issued, verify, expected):
    response = client.get(
        reverse("issuance:login-check"), **certificate_headers(issued.pem, verify)
    )
    assert response.status_code == 403 and expected in response.content.decode()


@pytest.mark.django_db
def test_r07_a_certificate_revoked_in_our_records_is_refused_even_if_the_proxy_passed_it(
    client, issued
):
    revoke_certificate(issued, reason="keyCompromise", actor=audit.Actor.system("test"))
    response = client.get(reverse("issuance:login-check"), **certificate_headers(issued.pem))
    assert response.status_code == 403 and "失効" in response.content.decode()


@pytest.mark.django_db
def test_r07_headers_are_believed_only_from_the_configured_proxy(client, issued, settings):
    settings.KIHONET_TRUSTED_PROXIES = ["10.0.0.1"]
    response = client.get(reverse("issuance:login-check"), **certificate_headers(issued.pem))
    assert response.status_code == 403 and "https" in response.content.decode()


@pytest.mark.django_db
def test_r07_a_certificate_with_our_serial_but_other_bytes_is_foreign(client, issued):
    # The proxy passed it (say, a CA that was trusted by mistake): we look it up by serial and
    # by fingerprint, so only the very certificate we issued is ours.
    ours = x509.load_pem_x509_certificate(issued.pem.encode())
    response = client.get(
        reverse("issuance:login-check"),
        **certificate_headers(foreign_certificate_pem(ours.serial_number)),
    )
    assert response.status_code == 403
    assert "企保ネットのクライアント証明書ではない" in response.content.decode()
