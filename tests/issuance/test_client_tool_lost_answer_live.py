"""End to end: the certificate's answer is dropped after the server committed it.

A proxy between the client tool and the running server forwards the tool's CSR, lets the
server issue the certificate, and closes the tool's connection without the answer. The tool
sends the same request again (same token, same CSR); the retry-safe server must answer with
the same certificate.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from issuance.client_tool.kihonet_agent import AgentStore
from issuance.models import Certificate
from tests.client_tool.helpers import notice_fields
from tests.factories import make_notice
from tests.issuance.test_client_tool_live import run_tool

pytestmark = pytest.mark.django_db(transaction=True)

TOOL = "issuance/client_tool/kihonet_agent.py"


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], drops: int) -> None:
        self.upstream, self.drops = upstream, drops
        self.certificate_requests: list[bytes] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Relay)


class _Relay(socketserver.BaseRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        request = _read_request(self.request)
        first_line = request.split(b"\r\n", 1)[0]
        with socket.create_connection(self.server.upstream, timeout=30) as upstream:
            upstream.sendall(request)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        with self.server.lock:
            drop = first_line.split(b" ")[1].endswith(b"/certificate") and self.server.drops > 0
            if first_line.split(b" ")[1].endswith(b"/certificate"):
                self.server.certificate_requests.append(request.partition(b"\r\n\r\n")[2])
            if drop:
                self.server.drops -= 1
        if drop:  # issued and committed, and the answer never reaches the tool
            self.request.shutdown(socket.SHUT_RDWR)
            return
        self.request.sendall(answer)


@contextmanager
def dropping_proxy(live_url: str, drops: int = 1) -> Iterator[_Proxy]:
    host, port = live_url.removeprefix("http://").split(":")
    proxy = _Proxy((host, int(port)), drops)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_issue14_a_certificate_whose_answer_was_dropped_reaches_the_tool(
    live_server,
    live_ca,
    tmp_path,
):
    notice = make_notice()
    user, store = notice.user, tmp_path / "store"
    with dropping_proxy(live_server.url) as proxy:
        port = proxy.server_address[1]
        result = run_tool(
            TOOL,
            "enroll",
            "--server",
            f"http://127.0.0.1:{port}",
            *notice_fields(notice),
            "--yes",
            "--no-install",
            store=store,
        )
    first, again = proxy.certificate_requests[:2]
    assert first == again  # the tool sent the same CSR again
    (certificate,) = Certificate.objects.filter(user=user)
    assert result.returncode == 0, result.stderr
    assert [info.serial for info in AgentStore(store).certificates()] == [certificate.serial]
