"""R06, R07, R17 for real: nginx with the configuration of deploy/, a certificate acquired by
the client tool through it, then login with `curl --cert`, refused after revocation."""

import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from issuance import audit, ca
from issuance.models import Certificate
from issuance.services.certificates import revoke_certificate
from issuance.services.crl import publish_crl
from tests.client_tool.helpers import notice_fields
from tests.conftest import require
from tests.factories import make_notice

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "kihonet.conf.template"
TOOL = ROOT / "issuance" / "client_tool" / "kihonet_agent.py"
PASSWORD = "pc password"
LOGIN_HOST = "login.kihonet.test"  # its own name, so that TLS (SNI) picks the login server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_pem(path: Path, *objects) -> Path:
    parts = []
    for obj in objects:
        if isinstance(obj, x509.Certificate):
            parts.append(obj.public_bytes(serialization.Encoding.PEM))
        else:
            parts.append(
                obj.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    path.write_bytes(b"".join(parts))
    return path


def tls_server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway TLS CA and a server certificate for the site and the login check."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test TLS CA")])
    tls_ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName(LOGIN_HOST)]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return (
        write_pem(directory / "tls-ca.pem", tls_ca),
        write_pem(directory / "server.pem", server),
        write_pem(directory / "server.key", key),
    )


class Nginx:
    def __init__(self, directory: Path, site: str) -> None:
        self.directory = directory
        (directory / "logs").mkdir(parents=True)
        (directory / "site.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {directory}/nginx.pid;\n"
            f"error_log {directory}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n"
            "http {\n  include /etc/nginx/mime.types;\n"
            f"  access_log {directory}/logs/access.log;\n"
            f"  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
            f"  include {directory}/site.conf;\n}}\n"
        )
        self.process = None

    def command(self, *extra: str) -> list[str]:
        return [
            shutil.which("nginx"),
            "-p",
            str(self.directory),
            "-c",
            str(self.directory / "nginx.conf"),
            *extra,
        ]

    def start(self) -> None:
        subprocess.run(self.command("-t"), check=True, capture_output=True)
        self.process = subprocess.Popen(self.command("-g", "daemon off;"))

    def reload(self) -> None:
        subprocess.run(self.command("-s", "reload"), check=True, capture_output=True)
        time.sleep(0.5)  # the new workers take over; not a timing assertion

    def stop(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(timeout=10)


def wait_for(port: int) -> None:
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def render_site(
    directory: Path,
    *,
    https_port: int,
    upstream: str,
    client_ca: Path,
    client_crl: str,
    tls_cert: Path,
    tls_key: Path,
    http_port: int | None = None,
) -> str:
    """deploy/nginx/kihonet.conf.template rendered as envsubst would, for a test's own nginx
    (its access log in ``directory``/nginx-logs)."""
    (directory / "nginx-logs").mkdir(exist_ok=True)
    rendered = string.Template(TEMPLATE.read_text()).safe_substitute(
        {
            "KIHONET_SERVER_NAME": "localhost",
            "KIHONET_LOGIN_SERVER_NAME": LOGIN_HOST,
            "KIHONET_HTTP_PORT": str(http_port or free_port()),
            "KIHONET_HTTPS_PORT": str(https_port),
            "KIHONET_TLS_CERT": str(tls_cert),
            "KIHONET_TLS_KEY": str(tls_key),
            "KIHONET_CLIENT_CA": str(client_ca),
            "KIHONET_CLIENT_CRL": client_crl,
            "KIHONET_UPSTREAM": upstream,
            "KIHONET_STATIC_ROOT": str(directory / "static"),
            "KIHONET_NGINX_DIR": str(TEMPLATE.parent),
            "KIHONET_NGINX_LOG_DIR": str(directory / "nginx-logs"),
        }
    )
    assert "${KIHONET" not in rendered
    return rendered


@pytest.fixture
def site(live_server, settings, tmp_path):
    require(shutil.which("nginx") is not None, "nginx (Debian package nginx-light)")
    require(shutil.which("curl") is not None, "curl")
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "e2e"
    settings.KIHONET_NGINX_CRL_FILE = str(tmp_path / "nginx-crl.pem")
    settings.KIHONET_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.ALLOWED_HOSTS = ["localhost", LOGIN_HOST]
    ca.reset()
    material = ca.create()
    publish_crl()
    chain = tmp_path / "client-ca.pem"
    chain.write_text(material.chain_pem)
    tls_ca, server_cert, server_key = tls_server_certificate(tmp_path)
    port = free_port()
    settings.KIHONET_BASE_URL = f"https://localhost:{port}"
    rendered = render_site(
        tmp_path,
        https_port=port,
        upstream=live_server.url.removeprefix("http://"),
        client_ca=chain,
        client_crl=settings.KIHONET_NGINX_CRL_FILE,
        tls_cert=server_cert,
        tls_key=server_key,
    )
    nginx = Nginx(tmp_path / "nginx", rendered)
    nginx.start()
    wait_for(port)
    yield {"port": port, "tls_ca": tls_ca, "nginx": nginx, "dir": tmp_path}
    nginx.stop()
    ca.reset()


def curl(site, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--cacert",
            str(site["tls_ca"]),
            "--write-out",
            "\n%{http_code}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def login_check(site, *cert_args: str) -> tuple[int, str]:
    port = site["port"]
    result = curl(
        site,
        "--resolve",
        f"{LOGIN_HOST}:{port}:127.0.0.1",
        *cert_args,
        f"https://{LOGIN_HOST}:{port}/login-check/",
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def acquire_with_the_client_tool(site, notice) -> Path:
    store = site["dir"] / "store"
    env = {
        **os.environ,
        "KIHONET_AGENT_PASSPHRASE": PASSWORD,
        "KIHONET_CAFILE": str(site["tls_ca"]),
        "HOME": str(site["dir"] / "home"),  # the browser's store of the test's own home
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    result = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            "enroll",
            "--server",
            f"https://localhost:{site['port']}",
            *notice_fields(notice),
            "--yes",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (p12,) = store.glob("*.p12")
    key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), PASSWORD.encode())
    return write_pem(site["dir"] / "login.pem", cert, key)


def test_r06_r07_r17_login_through_nginx_with_the_acquired_certificate(site):
    notice = make_notice()
    login = acquire_with_the_client_tool(site, notice)
    certificate = Certificate.objects.get(user=notice.user)

    status, body = login_check(site, "--cert", str(login))
    assert status == 200, body
    assert f"ユーザーID {notice.user.user_id}（管理番号 {notice.user.management_number}）様" in body
    assert "ログインできます" in body

    status, body = login_check(site)
    assert status == 403 and "クライアント証明書が提示されていません" in body, body

    revoke_certificate(certificate, reason="keyCompromise", actor=audit.Actor.system("test"))
    crl = x509.load_pem_x509_crl(Path(site["dir"] / "nginx-crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(certificate.serial, 16))
    site["nginx"].reload()
    status, body = login_check(site, "--cert", str(login))
    assert status == 403 and "失効" in body
    access_log = (site["dir"] / "nginx-logs" / "kihonet-access.log").read_text()
    assert "/login-check/" in access_log


def test_r17_plain_http_is_redirected_and_certificate_headers_from_clients_are_ignored(
    site, settings
):
    notice = make_notice()
    acquire_with_the_client_tool(site, notice)
    forged = Certificate.objects.get(user=notice.user).pem.replace("\n", "%0A")
    status, body = login_check(
        site, "-H", "X-SSL-Client-Verify: SUCCESS", "-H", f"X-SSL-Client-Cert: {forged}"
    )
    assert status == 403 and "提示されていません" in body
