"""A certificate whose answer is lost is not lost (R07, R12): the real server, real sockets.

gunicorn with the production configuration (deploy/gunicorn.conf.py) serves the test database.
The tests drop the connection before reading the answer, and ``kill -9`` the whole server at
seeded random moments of a batch of certificate requests; every request sent again gets the
certificate the first one made, and every notice ends with exactly one certificate.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone

from issuance.models import AuditEvent, Certificate
from issuance.services import certificates
from tests.csr import make_csr
from tests.factories import make_notice
from tests.issuance.services.test_renewal import ACTOR, make_holder, sign
from tests.issuance.test_retry_safe_issuing import certificate_url, confirmed_token
from tests.notifications.smtp import free_port
from tests.notifications.test_worker_integration import test_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60
SEED = 20261201
BATCH = 12
KILLS = 4


class Server:
    """gunicorn in its own process group, so that ``kill`` takes the master and its workers."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log = tmp_path / "gunicorn.log"
        self.process: subprocess.Popen | None = None
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KIHONET_", "DJANGO_", "CELERY_", "GUNICORN_"))
        }
        self.env.update(
            {
                "DATABASE_URL": test_database_url(),
                "DATABASE_CONN_MAX_AGE": "0",
                "SECRET_KEY": "lost-answers-" + "s" * 40,
                "DEBUG": "false",
                "KIHONET_DATA_DIR": str(tmp_path / "var"),
                "KIHONET_CA_DIR": str(settings.KIHONET_CA_DIR),
                "KIHONET_CA_PASSPHRASE": settings.KIHONET_CA_PASSPHRASE,
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "GUNICORN_WORKERS": "2",
                "GUNICORN_THREADS": "2",
            }
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "kihonet.wsgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{self.log.read_text()}")
            try:
                if self.request("GET", "/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """``kill -9`` of the master and every worker at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(
                method,
                path,
                body=json.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else {}

    def post_and_drop(self, path: str, body: dict) -> None:
        """Sends the request whole, then closes the socket without reading the answer."""
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(head + payload)


@pytest.fixture
def server(issuing_ca, tmp_path):
    started = Server(tmp_path)
    started.start()
    yield started
    started.stop()


def wait_for(condition, what: str, server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"{what}:\n{server.log.read_text()}")


def public_key_of(pem: str) -> bytes:
    return (
        x509.load_pem_x509_certificate(pem.encode())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def key_bytes(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_r07_acquisition_answer_dropped_after_commit_is_answered_again(server):
    notice = make_notice()
    token = confirmed_token(notice)
    key, csr = make_csr()
    server.post_and_drop(certificate_url(token), {"csr": csr})
    issued = Certificate.objects.filter(notice=notice)
    wait_for(issued.exists, "the dropped request issued no certificate", server)

    status, body = server.request("POST", certificate_url(token), {"csr": csr})
    assert status == 201, body
    certificate = issued.get()
    assert (body["serial"], body["certificate"]) == (certificate.serial, certificate.pem)
    assert public_key_of(body["certificate"]) == key_bytes(key)
    assert issued.count() == 1
    assert AuditEvent.objects.filter(
        action="certificate_replayed", object_id=str(certificate.pk)
    ).exists()


def test_r12_renewal_answer_dropped_after_commit_is_answered_again(server):
    old_key, old_csr = make_csr()
    old = certificates.issue_certificate(
        user=make_holder(),
        csr_data=old_csr,
        actor=ACTOR,
        now=timezone.now() - timedelta(days=3 * 365 - 10),
    )
    status, body = server.request("POST", "/api/v1/renewals/challenge", {"certificate": old.pem})
    assert status == 201, body
    challenge = body["challenge"]
    new_key, new_csr = make_csr()
    request = {
        "certificate": old.pem,
        "challenge": challenge,
        "signature": sign(old_key, challenge),
        "csr": new_csr,
    }
    server.post_and_drop("/api/v1/renewals", request)
    renewed = Certificate.objects.filter(renewed_from=old)
    wait_for(renewed.exists, "the dropped renewal issued no certificate", server)

    status, body = server.request("POST", "/api/v1/renewals", request)
    assert status == 201, body
    assert body["serial"] == renewed.get().serial
    assert public_key_of(body["certificate"]) == key_bytes(new_key)
    assert renewed.count() == 1


def test_r07_kill_9_at_random_moments_of_a_batch_loses_no_certificate(server):
    """KILLS rounds: the batch is sent over 4 connections at once and the server is killed
    after a seeded random number of answers, with requests in flight, some of them committed
    but not answered; each round sends every request again. Then a fresh server answers every
    request, with the certificate the first one made."""
    rng = random.Random(SEED)
    notices = [make_notice() for _ in range(BATCH)]
    requests = []
    for notice in notices:
        key, csr = make_csr()
        requests.append((notice, certificate_url(confirmed_token(notice)), {"csr": csr}, key))

    answers: dict[int, set[str]] = {notice.pk: set() for notice in notices}
    answered = threading.Semaphore(0)

    def send(item) -> None:
        notice, url, body, _key = item
        try:
            status, answer = server.request("POST", url, body)
        except (OSError, http.client.HTTPException):
            return  # the server was killed: the answer is lost
        assert status == 201, answer
        answers[notice.pk].add(answer["serial"])
        answered.release()

    for round_number in range(KILLS):
        if round_number:
            server.start()
        order = rng.sample(requests, len(requests))
        kill_after = rng.randrange(BATCH // 2)  # answers, with up to 4 more requests in flight
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(send, item) for item in order]
            for _ in range(kill_after):
                answered.acquire(timeout=30)
            time.sleep(rng.uniform(0, 0.03))  # somewhere inside the requests in flight
            server.kill()
            for future in pending:
                future.result()

    server.start()
    for notice, url, body, key in requests:
        status, answer = server.request("POST", url, body)
        assert status == 201, (notice, answer)
        [certificate] = Certificate.objects.filter(notice=notice)
        assert answer["serial"] == certificate.serial
        assert public_key_of(answer["certificate"]) == key_bytes(key)
        answers[notice.pk].add(answer["serial"])
    assert all(len(serials) == 1 for serials in answers.values()), answers
    assert Certificate.objects.filter(notice__in=notices).count() == BATCH
