"""One-time tokens: random, 256 bits, and stored only as their SHA-256 digest."""

import hashlib
import math
import secrets

TOKEN_BYTES = 32
# What new_token() gives: TOKEN_BYTES in unpadded URL-safe Base64.
TOKEN_LENGTH = math.ceil(TOKEN_BYTES * 4 / 3)
TOKEN_RE = rf"^[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}$"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
