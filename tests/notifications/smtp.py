"""A real SMTP server on a free loopback port (aiosmtpd), that can answer 451 to the first tries."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RecordingHandler:
    """Keeps every accepted message; refuses the first ``fail_first`` with 451."""

    def __init__(self, *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.attempts = 0
        self.messages: list[EmailMessage] = []
        # ``refusals[address]``: the SMTP replies (e.g. 451, 550) to RCPT TO, in order, before
        # the address is accepted; ``recipients`` every address offered, refused or not.
        self.refusals: dict[str, list[int]] = {}
        self.recipients: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        with self._lock:
            self.recipients.append(address)
            codes = self.refusals.get(address)
            code = codes.pop(0) if codes else None
        if code is not None:
            return f"{code} {code // 100}.1.1 Refused for the test"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.attempts += 1
            refuse = self.attempts <= self.fail_first
        if refuse:
            return "451 4.3.0 Try again later"
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        with self._lock:
            self.messages.append(message)
        return "250 2.0.0 OK"

    def message_ids(self) -> Counter:
        with self._lock:
            return Counter(message["Message-ID"] for message in self.messages)

    def by_message_id(self, message_id: str) -> EmailMessage:
        with self._lock:
            [message] = [m for m in self.messages if m["Message-ID"] == message_id]
        return message


class SmtpServer:
    def __init__(self, handler: RecordingHandler) -> None:
        self.handler = handler
        self.port = free_port()
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()

    def serve_django(self, settings) -> None:
        """Points Django's SMTP backend at this server (``settings``: pytest-django's fixture)."""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = self.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 5


class SmtpControl:
    """What a test does to the real server Django mails through (the ``smtp_server`` fixture):
    refuse an address (``refusals``), be unreachable, and see what it was offered."""

    def __init__(self, server: SmtpServer, settings) -> None:
        self.server = server
        self.settings = settings

    @property
    def refusals(self) -> dict[str, list[int]]:
        return self.server.handler.refusals

    @property
    def attempts(self) -> list[str]:
        """Every recipient offered (RCPT TO), accepted or refused, in order."""
        return self.server.handler.recipients

    @property
    def messages(self) -> list[EmailMessage]:
        return self.server.handler.messages

    @property
    def unreachable(self) -> bool:
        return self.settings.EMAIL_PORT != self.server.port

    @unreachable.setter
    def unreachable(self, value: bool) -> None:
        # A port nobody listens on: the connection is refused, as with a server that is down.
        self.settings.EMAIL_PORT = free_port() if value else self.server.port
