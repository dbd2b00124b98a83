"""A locmem mail backend that can refuse mails or be unreachable, for the in-process tests."""

from __future__ import annotations

import smtplib
from typing import ClassVar

from django.core.mail.backends import locmem


class FlakyBackend(locmem.EmailBackend):
    """``refusals[address]``: the SMTP codes to answer, in order, before accepting."""

    refusals: ClassVar[dict[str, list[int]]] = {}
    unreachable: ClassVar[bool] = False
    attempts: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.refusals = {}
        cls.unreachable = False
        cls.attempts = []

    def open(self):
        if self.unreachable:
            raise ConnectionRefusedError(111, "Connection refused")
        return super().open()

    def send_messages(self, messages):
        for message in messages:
            address = message.to[0]
            self.attempts.append(address)
            codes = self.refusals.get(address)
            if codes:
                code = codes.pop(0)
                raise smtplib.SMTPRecipientsRefused({address: (code, b"refused for the test")})
        return super().send_messages(messages)
