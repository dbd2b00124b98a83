"""The built client tools on offer (R13): which file suits the visitor's system, and its
SHA-256 so that the customer can check what was downloaded.

The files are made by PyInstaller from ``packaging/kihonet_agent.spec`` (one per system, each
built on its own system) and put in ``KIHONET_CLIENT_TOOL_DIR``. Pure reads of that folder.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

WINDOWS, MACOS, LINUX = "windows", "macos", "linux"
FILENAMES = {
    WINDOWS: "kihonet_agent-windows.exe",
    MACOS: "kihonet_agent-macos",
    LINUX: "kihonet_agent-linux",
}
LABELS = {WINDOWS: "Windows", MACOS: "macOS", LINUX: "Linux"}
SCRIPT_FILENAME = "kihonet_agent.py"
SCRIPT = Path(__file__).resolve().parent / SCRIPT_FILENAME


@dataclass(frozen=True)
class ToolFile:
    system: str  # windows, macos, linux; "" for the script
    filename: str
    path: Path
    size: int
    sha256: str

    @property
    def label(self) -> str:
        return LABELS.get(self.system, "Python")

    @property
    def command(self) -> str:
        """How the file is started from a command line in its folder."""
        if self.system == WINDOWS:
            return f".\\{self.filename}"
        if self.system:
            return f"./{self.filename}"
        return f"python {self.filename}"

    @property
    def size_label(self) -> str:
        """22.3 MB, or 41 KB for the script."""
        if self.size >= 1_000_000:
            return f"{self.size / 1_000_000:.1f} MB"
        return f"{max(1, round(self.size / 1000))} KB"


def system_of(user_agent: str) -> str:
    """The visitor's system from its User-Agent: windows, macos, linux or "" (unknown)."""
    agent = user_agent or ""
    if "Windows" in agent:
        return WINDOWS
    if "Android" in agent or "iPhone" in agent or "iPad" in agent:
        return ""  # no client certificate journey on a phone's own store
    if "Macintosh" in agent or "Mac OS X" in agent:
        return MACOS
    if "Linux" in agent or "X11" in agent or "CrOS" in agent:
        return LINUX
    return ""


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, computed once per version of the file (path, size, mtime)."""
    key = (str(path), size, mtime_ns)
    with _digests_lock:
        known = _digests.get(key)
    if known:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    with _digests_lock:
        _digests[key] = digest.hexdigest()
    return _digests[key]


def _tool_file(system: str, path: Path) -> ToolFile | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file() or stat.st_size == 0:
        return None
    return ToolFile(
        system, path.name, path, stat.st_size, _sha256(path, stat.st_size, stat.st_mtime_ns)
    )


def build_for(system: str) -> ToolFile | None:
    """The built file for ``system`` in ``KIHONET_CLIENT_TOOL_DIR``, if there is one."""
    if system not in FILENAMES:
        return None
    return _tool_file(system, Path(settings.KIHONET_CLIENT_TOOL_DIR) / FILENAMES[system])


def builds() -> list[ToolFile]:
    """Every built file on offer, Windows first."""
    return [found for system in FILENAMES if (found := build_for(system))]


def script() -> ToolFile:
    """The single-file script (needs Python and ``cryptography`` on the PC)."""
    found = _tool_file("", SCRIPT)
    if found is None:  # pragma: no cover - the script is part of the project
        raise FileNotFoundError(SCRIPT)
    return found


def by_filename(filename: str) -> ToolFile | None:
    """Only the names of ``FILENAMES`` are ever served: nothing else from the folder."""
    for system, name in FILENAMES.items():
        if filename == name:
            return build_for(system)
    return None
