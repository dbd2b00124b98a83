"""A logging filter that keeps secrets and personal data out of every log line.

Private keys, passphrases and one-time tokens never appear; e-mail addresses only masked
(``u***@example.jp``); the reminder mails' Message-IDs, which look like addresses, stay whole.
"""

import logging
import re

PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL
)
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(passphrase|password|secret|token|signature|challenge)(\"?\s*[:=]\s*\"?)[^\s\",&]+"
)
TOKEN_PATH = re.compile(r"(/api/v1/enrollments/)[^/\s]+")
EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


# The reminder mails' Message-IDs (notifications.emails.message_id): they name a certificate,
# not a person, and are what traces a failed mail to its certificate, so they stay whole.
REMINDER_MESSAGE_ID = re.compile(r"(<reminder-\d+-[0-9A-F]+@[A-Za-z0-9.-]+>)")


def _mask_addresses(text: str) -> str:
    return EMAIL.sub(r"\1***@\2", text)


def redact(text: str) -> str:
    text = PRIVATE_KEY.sub("[private key removed]", text)
    text = SECRET_ASSIGNMENT.sub(r"\1\2***", text)
    text = TOKEN_PATH.sub(r"\1***", text)
    # Split keeps the Message-IDs at the odd places; only the text between them is masked.
    parts = REMINDER_MESSAGE_ID.split(text)
    return "".join(part if i % 2 else _mask_addresses(part) for i, part in enumerate(parts))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
