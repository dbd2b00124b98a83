"""No secret in any log line, on the real output of the deployed processes.

gunicorn runs with deploy/gunicorn.conf.py and production settings on the test database,
nginx with deploy/nginx/kihonet.conf.template in front of it; the client's journey goes through
both with a real enrollment token in the path. Neither gunicorn's access and error logs (which
carry Django's own log lines too) nor nginx's access log may then hold the token; each still
has the request, with *** for the token.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from issuance import ca
from issuance.services.crl import publish_crl
from tests.conftest import require
from tests.csr import make_csr
from tests.factories import enrollment_fields, make_notice
from tests.production.test_hardening import production_env
from tests.production.test_nginx_end_to_end import (
    LOGIN_HOST,
    Nginx,
    free_port,
    render_site,
    tls_server_certificate,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Gunicorn:
    """gunicorn with the deploy configuration, its output (access log on stdout, error log
    with Django's log lines on stderr) in files, and a home of its own."""

    def __init__(self, directory: Path, port: int, **env: str) -> None:
        self.directory, self.port = directory, port
        self.home = directory / "home"
        self.home.mkdir(parents=True)
        self.env = production_env(
            DATABASE_URL=database_url(),
            CACHE_URL=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/9"),
            CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9"),
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS="1",
            GUNICORN_THREADS="2",
            HOME=str(self.home),
            **env,
        )
        self.stdout, self.stderr = directory / "gunicorn.out", directory / "gunicorn.err"

    def __enter__(self) -> Gunicorn:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "kihonet.wsgi"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
            )
        try:
            wait_for(self.port)
        except RuntimeError:
            self.__exit__()
            raise AssertionError(self.stderr.read_text()) from None
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    def logs(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()


def journey(base: str, *curl_args: str) -> list[str]:
    """Acquisition through the API with a real notice: returns the token it was given and the
    status codes, after using the token in every path that takes one."""

    def post(path: str, body: dict | None = None) -> tuple[int, dict]:
        result = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--noproxy",
                "*",
                *curl_args,
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                json.dumps(body or {}),
                "--write-out",
                "\n%{http_code}",
                f"{base}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        text, _, status = result.stdout.rpartition("\n")
        return int(status), json.loads(text) if text.startswith("{") else {}

    notice = make_notice()
    status, started = post("/api/v1/enrollments", enrollment_fields(notice))
    assert status == 201, started
    token = started["token"]
    statuses = [
        post(f"/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]})[0],  # 409
        post(f"/api/v1/enrollments/{token}/confirm")[0],  # 200
        post(f"/api/v1/enrollments/{token}/certificate", {"csr": "garbage"})[0],  # 400
        post(f"/api/v1/enrollments/{token}x/confirm")[0],  # unknown: 404 and Django's warning
        post(f"/api/v1/enrollments/{token}/confirm?token={token}")[0],
    ]
    assert statuses == [409, 200, 400, 404, 200], statuses
    return [token]


@pytest.fixture
def ca_files(settings, tmp_path):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "log test"
    settings.KIHONET_NGINX_CRL_FILE = str(tmp_path / "nginx-crl.pem")
    ca.reset()
    material = ca.create()
    publish_crl()
    chain = tmp_path / "client-ca.pem"
    chain.write_text(material.chain_pem)
    yield {
        "KIHONET_CA_DIR": str(tmp_path / "ca"),
        "KIHONET_CA_PASSPHRASE": "log test",
        "chain": chain,
        "crl": settings.KIHONET_NGINX_CRL_FILE,
    }
    ca.reset()


def test_gunicorn_access_and_error_logs_never_carry_the_enrollment_token(tmp_path, ca_files):
    require(shutil.which("curl") is not None, "curl")
    port = free_port()
    with Gunicorn(
        tmp_path,
        port,
        ALLOWED_HOSTS="127.0.0.1",
        KIHONET_CA_DIR=ca_files["KIHONET_CA_DIR"],
        KIHONET_CA_PASSPHRASE=ca_files["KIHONET_CA_PASSPHRASE"],
    ) as gunicorn:
        (token,) = journey(f"http://127.0.0.1:{port}", "-H", "X-Forwarded-Proto: https")
    logs = gunicorn.logs()
    assert token not in logs, logs
    assert token[:12] not in logs
    access = gunicorn.stdout.read_text()
    assert access.count('"POST /api/v1/enrollments/***/confirm"') == 3, access
    assert access.count('"POST /api/v1/enrollments/***/certificate"') == 2, access
    assert "Not Found: /api/v1/enrollments/***/confirm" in gunicorn.stderr.read_text(), logs
    # No control socket: none in the instance's home (its default place), none shared.
    assert not (gunicorn.home / ".gunicorn").exists()


def test_nginx_access_log_never_carries_the_enrollment_token(tmp_path, ca_files):
    require(shutil.which("nginx") is not None, "nginx (Debian package nginx-light)")
    require(shutil.which("curl") is not None, "curl")
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    tls_ca, server_cert, server_key = tls_server_certificate(tmp_path)
    nginx = Nginx(
        tmp_path / "nginx",
        render_site(
            tmp_path,
            https_port=https_port,
            http_port=http_port,
            upstream=f"127.0.0.1:{app_port}",
            client_ca=ca_files["chain"],
            client_crl=ca_files["crl"],
            tls_cert=server_cert,
            tls_key=server_key,
        ),
    )
    with Gunicorn(
        tmp_path,
        app_port,
        ALLOWED_HOSTS=f"localhost,{LOGIN_HOST}",
        KIHONET_TRUSTED_PROXIES="127.0.0.1",
        KIHONET_BASE_URL=f"https://localhost:{https_port}",
        KIHONET_CA_DIR=ca_files["KIHONET_CA_DIR"],
        KIHONET_CA_PASSPHRASE=ca_files["KIHONET_CA_PASSPHRASE"],
    ) as gunicorn:
        nginx.start()
        try:
            wait_for(https_port)
            (token,) = journey(f"https://localhost:{https_port}", "--cacert", str(tls_ca))
            # Plain http (R17) only redirects; that line is written too.
            subprocess.run(
                [
                    "curl",
                    "--silent",
                    "--noproxy",
                    "*",
                    f"http://localhost:{http_port}/api/v1/enrollments/{token}/confirm",
                ],
                capture_output=True,
                timeout=30,
                check=True,
            )
        finally:
            nginx.stop()
    access = (tmp_path / "nginx-logs" / "kihonet-access.log").read_text()
    assert token not in access and token[:12] not in access, access
    assert access.count('"POST /api/v1/enrollments/***/confirm"') == 3, access
    assert access.count('"POST /api/v1/enrollments/***/certificate"') == 2, access
    assert '"GET /api/v1/enrollments/***/confirm" 301' in access, access
    assert '"POST /api/v1/enrollments" 201' in access, access
    assert token not in gunicorn.logs()
    everything = "".join(p.read_text() for p in (tmp_path / "nginx" / "logs").glob("*.log"))
    assert token not in everything, everything
