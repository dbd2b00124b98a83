"""Reading an NSS database with Debian's ``libnss3-tools``, as a customer's Chromium would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require_nss_tools() -> None:
    """The NSS tests fail under CI (never skip) when ``libnss3-tools`` is missing."""
    if shutil.which("certutil") and shutil.which("pk12util"):
        return
    message = "libnss3-tools (certutil, pk12util) is not installed"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _certutil(*args: str) -> str:
    result = subprocess.run(
        ["certutil", *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def nss_certificates(database: Path) -> str:
    """``certutil -L``: nickname and trust of each certificate."""
    return _certutil("-L", "-d", f"sql:{database}")


def nss_keys(database: Path) -> str:
    """``certutil -K``: the key ids (SHA-1 of the public key) and nicknames of the keys."""
    return _certutil("-K", "-d", f"sql:{database}", "--empty-password")


def nss_serials(database: Path, nickname: str) -> list[int]:
    """Serial numbers of every certificate listed under ``nickname``."""
    from cryptography import x509

    pem = _certutil("-L", "-d", f"sql:{database}", "-n", nickname, "-a")
    return [c.serial_number for c in x509.load_pem_x509_certificates(pem.encode())]


def make_nss_database(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _certutil("-N", "-d", f"sql:{folder}", "--empty-password")
    return folder
