"""Stand-ins for Windows' ``certutil``/``powershell`` and macOS' ``security``, first on PATH.

They cannot run here, so each stand-in records its arguments (one JSON line per call in the
file ``STANDIN_LOG``) and checks what a real one would need: that the PKCS#12 file it was
handed opens with the password it was given, and holds one certificate with its key.  It
records that certificate's serial, the key's public key and the PKCS#12's encryption so that
a test can check them.  ``STANDIN_MODE`` makes it answer as a refusing system would:
``deny`` (no rights: Windows' E_ACCESSDENIED, macOS' write permissions error) or ``no-aes``
(Windows before 10 1709, which cannot read AES-256 PKCS#12 files).  The schedulers' stand-ins
print ``STANDIN_STDOUT`` (what a real one would answer a query, e.g. the next run time).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

PBES2_OID = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
TRIPLE_DES_OID = bytes.fromhex("060a2a864886f70d010c0103")  # pbeWithSHAAnd3-KeyTripleDES-CBC
TOOLS = ("certutil", "powershell", "security")
SCHEDULERS = ("schtasks", "launchctl", "systemctl")  # recorded, always answering success

DENIED = {
    "certutil": "CertUtil: -importPFX command FAILED: 0x80070005 (WIN32: 5 ERROR_ACCESS_DENIED)"
    "\nCertUtil: Access is denied.",
    "powershell": "Import-PfxCertificate : Access is denied. 0x80070005 (E_ACCESSDENIED)",
    "security": "security: SecKeychainItemImport: write permissions error",
}


def install_standins(folder: Path, tools: tuple[str, ...] = TOOLS) -> Path:
    """Write the stand-ins of ``tools`` into ``folder``; returns it (to put first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).read_text(encoding="utf-8")
    for tool in tools:
        script = folder / tool
        script.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def read_log(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _open_pkcs12(path: str, password: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = Path(path).read_bytes()
    loaded = pkcs12.load_pkcs12(data, password.encode("utf-8"))  # ValueError: wrong password
    assert loaded.key is not None and loaded.cert is not None, "no key or certificate"
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    key_matches = loaded.key.public_key().public_bytes(*spki) == (
        loaded.cert.certificate.public_key().public_bytes(*spki)
    )
    return {
        "serial": format(loaded.cert.certificate.serial_number, "X"),
        "public_key": loaded.key.public_key().public_bytes(*spki).hex(),
        "key_matches_certificate": key_matches,
        "friendly_name": (loaded.cert.friendly_name or b"").decode(),
        "chain": [c.certificate.subject.rfc4514_string() for c in loaded.additional_certs],
        "aes": PBES2_OID in data,
        "triple_des": TRIPLE_DES_OID in data,
        "file_mode": oct(os.stat(path).st_mode & 0o777),
    }


def _handed(tool: str, argv: list[str]) -> tuple[str, str] | None:
    """(PKCS#12 file, password) of an import call, else None."""
    if tool == "certutil" and "-importPFX" in argv:
        return argv[argv.index("-importPFX") + 1], argv[argv.index("-p") + 1]
    if tool == "powershell" and "Import-PfxCertificate" in " ".join(argv):
        return os.environ["KIHONET_PFX_FILE"], os.environ["KIHONET_PFX_PASSWORD"]
    if tool == "security" and argv[:1] == ["import"]:
        return argv[1], argv[argv.index("-P") + 1]
    return None


def main() -> int:
    tool, argv = Path(sys.argv[0]).name, sys.argv[1:]
    mode = os.environ.get("STANDIN_MODE", "ok")
    entry: dict[str, Any] = {"tool": tool, "argv": argv}
    if tool == "powershell":
        entry["env"] = {k: v for k, v in os.environ.items() if k.startswith("KIHONET_")}
    handed = _handed(tool, argv)
    status = 0
    if handed is not None:
        try:
            entry["pkcs12"] = _open_pkcs12(*handed)
        except (ValueError, AssertionError, OSError) as exc:
            entry["error"] = str(exc)
            status = 1
        if status == 0 and mode == "deny":
            entry["answered"] = "denied"
            print(DENIED[tool], file=sys.stderr)
            status = 1
        elif status == 0 and mode == "no-aes" and entry["pkcs12"]["aes"]:
            entry["answered"] = "cannot read AES"
            print("CertUtil: -importPFX command FAILED: 0x80092002 (CRYPT_E_BAD_ENCODE)")
            status = 1
    if tool in SCHEDULERS and os.environ.get("STANDIN_STDOUT"):
        print(os.environ["STANDIN_STDOUT"])
    with open(os.environ["STANDIN_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
