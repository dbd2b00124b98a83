"""Throwaway SoftHSM2 tokens: the tests, the benchmarks and a dry run of the HSM set-up.

SoftHSM2 (Debian's ``softhsm2``) is a PKCS#11 module that keeps its tokens in a directory. It
reads the configuration named by ``SOFTHSM2_CONF`` when the module is initialised, so one
process uses one configuration: :func:`soft_hsm` writes it once (token directory of its own)
and points the environment at it; every token made later lives there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Where Debian's softhsm2 package puts the module; KIHONET_SOFTHSM2_MODULE overrides.
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def module_path() -> str | None:
    """The SoftHSM2 PKCS#11 module, or None when softhsm2 is not installed."""
    override = os.environ.get("KIHONET_SOFTHSM2_MODULE")
    candidates = (override,) if override else MODULE_CANDIDATES
    found = next((path for path in candidates if path and Path(path).is_file()), None)
    return found if found and shutil.which("softhsm2-util") else None


@dataclass(frozen=True)
class SoftToken:
    module: str
    label: str
    pin: str


@dataclass(frozen=True)
class SoftHsm:
    module: str
    directory: Path

    def create_token(self, label: str) -> SoftToken:
        """A new initialised token with a random PIN (softhsm2-util takes it as an argument:
        only for throwaway tokens, never for a real one)."""
        pin = secrets.token_hex(8)
        util = shutil.which("softhsm2-util") or "softhsm2-util"
        subprocess.run(  # noqa: S603 (fixed arguments, a label of our own)
            [
                util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                secrets.token_hex(8),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return SoftToken(self.module, label, pin)


_current: SoftHsm | None = None


def soft_hsm(directory: Path) -> SoftHsm:
    """This process's SoftHSM2 with its tokens under ``directory`` (the first call decides)."""
    global _current
    if _current is not None:
        return _current
    module = module_path()
    if module is None:
        raise FileNotFoundError("softhsm2 is not installed")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    _current = SoftHsm(module, directory)
    return _current
