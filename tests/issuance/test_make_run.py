"""`make run` with PORT=8080-style ports: it serves on that port, prints its URLs, and the
certificates it issues point at that port (KIHONET_BASE_URL follows PORT unless set); the demo
notice shows the URL the customer types, without the https warning for an http URL (R17)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from tests.client_tool.helpers import free_port
from tests.csr import make_csr

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with _no_proxy.open(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_make_run_serves_prints_and_certifies_the_ports_urls(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "KIHONET_BASE_URL"}
        and not k.startswith("PYTEST")
        and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(KIHONET_DATA_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1")
    # -o: the installed virtual environment is taken as it is (no pip run from a test).
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            try:
                status, body = request(base + "/")
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200
        assert f"--server {base}" in body.decode()  # the tool's start command on the home page
        out = "".join(lines)
        assert f"kihonet: {base}/ (served on {base}/)" in out
        assert f"serve --server {base}" in out
        assert f"back office: {base}/admin/" in out
        assert f"URL ⇒ {base}/" in out  # the demo notice: the URL the customer types
        assert "入力漏れ" not in out  # no https warning for an http URL (R17)

        # The demo notice it printed gets a certificate whose CRL and OCSP URLs use the port.
        notice = dict(re.findall(r"^  (\S+): (\S+)$", out, re.M))
        fields = {
            "kihonet_code": notice["企保ネットコード"],
            "management_number": notice["管理番号"],
            "user_id": notice["ユーザーID"],
            "year": notice["年"],
            "branch_number": notice["枝番"],
            "email": notice["Eメールアドレス"],
        }
        status, body = request(base + "/api/v1/enrollments", fields)
        assert status == 201, body
        token = json.loads(body)["token"]
        assert request(f"{base}/api/v1/enrollments/{token}/confirm", {})[0] == 200
        status, body = request(
            f"{base}/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]}
        )
        assert status == 201, body
        certificate = x509.load_pem_x509_certificate(json.loads(body)["certificate"].encode())
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        urls = [name.value for point in points.value for name in point.full_name]
        assert urls == [f"{base}/pki/crl.der"]
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        assert f"{base}/pki/ocsp" in [d.access_location.value for d in access.value]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
