"""Fixtures of the client-tool tests: most need no Django at all; the suite's ``live_ca`` is
for the tests that drive the tool against the live server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import ThrowawayCA, keyring_env
from .standins import SCHEDULERS, install_standins


@pytest.fixture
def _fresh_cache() -> Iterator[None]:
    """Overrides the suite-wide autouse cache reset: these tests do not use Django at all."""
    yield


@pytest.fixture(scope="session")
def ca() -> ThrowawayCA:
    return ThrowawayCA.create()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    result = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return result.returncode == 0


def _refuses_root(directory: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=directory)
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return False


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """An existing directory in which even root cannot create files.

    Root ignores permission bits, so ``chmod 0500`` proves nothing.  An immutable directory
    (``chattr +i``, honoured by the kernel for root too) makes file creation fail with
    EPERM, the same PermissionError a customer without administrator rights gets.  Where
    ``chattr`` is unavailable (no CAP_LINUX_IMMUTABLE, tmpfs/overlay without the flag),
    ``/sys/kernel`` is used: sysfs refuses new files with EACCES, also for root.
    """
    locked = tmp_path / "locked"
    locked.mkdir()
    if _chattr("+i", locked):
        try:
            if _refuses_root(locked):
                yield locked
                return
        finally:
            _chattr("-i", locked)
    fallback = Path("/sys/kernel")
    if fallback.is_dir() and _refuses_root(fallback):
        yield fallback
        return
    pytest.skip("no directory that refuses writes to root (chattr +i and sysfs unavailable)")


@pytest.fixture
def schedulers(tmp_path: Path, store_dir: Path) -> dict[str, str]:
    """The schedulers' stand-ins first on PATH, and a keyring holding the store's secret (the
    test's ``PASSPHRASE``): auto-renewal is enabled only where a run can open the store unasked."""
    folder = install_standins(tmp_path / "bin", SCHEDULERS)
    return {
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_LOG": str(tmp_path / "standin.log"),
        # in the XDG data folder of the tool's HOME, where the browser's NSS store is too
        **keyring_env(store_dir.parent / "home" / ".local" / "share", store_dir),
    }
