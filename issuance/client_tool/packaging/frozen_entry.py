"""Start of the packaged 「証明書取得クライアントツール」 (PyInstaller, one file per system).

The customer opens the file (a double click): with no command it runs ``serve`` for the site
it was built for, and its window stays open on exit so that the last message can be read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import kihonet_agent

SERVER_FILE = "kihonet_agent_server.txt"
NO_SERVER_MESSAGE = (
    "接続先のサーバーが設定されていません。"
    "ダウンロードしたページに表示されている「serve --server」から始まる指定を付けて起動してください。"
)


def built_in_server() -> str:
    """The site given at build time (``KIHONET_CLIENT_TOOL_SERVER``), or ``""``."""
    bundle = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))
    try:
        return (bundle / SERVER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def wait_before_closing() -> None:
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            input("Enter キーを押すと画面を閉じます。")
        except (EOFError, KeyboardInterrupt):
            pass


def main(argv: list[str]) -> int:
    server = built_in_server()
    if server:
        os.environ.setdefault(kihonet_agent.ENV_SERVER, server)
    if argv:
        return kihonet_agent.main(argv)
    # Opened without a command, as a customer does.
    if not os.environ.get(kihonet_agent.ENV_SERVER):
        print(NO_SERVER_MESSAGE, file=sys.stderr)
        wait_before_closing()
        return 2
    try:
        return kihonet_agent.main(["serve"])
    finally:
        wait_before_closing()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
