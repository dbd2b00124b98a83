"""Fixtures of the browser tests: the live server with a fresh CA, the real client tool in a
subprocess, and headless Chromium (Debian's, never a downloaded one) driven by Playwright.

The page must be opened at exactly the origin the client tool was given (``live_server.url``):
the tool answers only that origin.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from tests.client_tool.helpers import AGENT, PASSPHRASE, READY, agent_env, free_port
from tests.conftest import CHROMIUM_ARGS, SCREENSHOTS, TIMEOUT_MS, require  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PC_VIEWPORT = {"width": 1280, "height": 900}
PHONE_VIEWPORT = {"width": 375, "height": 812}

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str) -> bytes:
    """A plain GET from the test itself (no proxy), e.g. ``/pki/ca.pem``."""
    with _no_proxy.open(url, timeout=10) as response:
        return response.read()


# --------------------------------------------------------------------------- server side


@pytest.fixture
def site(live_server, settings, tmp_path):
    """The live server with its settings pointed at itself and a fresh CA of the test's own.

    ``live_server`` already brings ``transactional_db``; the rows of the data migrations (the
    contact table of R15) are loaded again after every transactional test by the suite's
    ``_reference_data`` fixture. The CA lives in files, so it is made after the settings name
    this server (its certificates point at ``live_server.url``).
    """
    from issuance import ca

    settings.KIHONET_BASE_URL = live_server.url
    settings.KIHONET_CLIENT_TOOL_PORT = free_port()
    settings.KIHONET_RENEWAL_START_DATE = date(2025, 1, 1)
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "browser test passphrase"
    ca.reset()
    material = ca.create()
    yield Site(live_server.url, settings.KIHONET_CLIENT_TOOL_PORT, material)
    ca.reset()


@dataclass
class Site:
    url: str
    tool_port: int
    ca: object

    def __call__(self, path: str = "/") -> str:
        return self.url + path


# --------------------------------------------------------------------------- the client tool


@dataclass
class ClientTool:
    """``kihonet_agent.py serve`` running for real, as the customer starts it (R13)."""

    process: subprocess.Popen
    port: int
    store: Path
    passphrase: str
    home: Path
    lines: list[str] = field(default_factory=list)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Another command of the same tool on the same store, e.g. ``list``."""
        return subprocess.run(
            [sys.executable, str(AGENT), *args, "--store", str(self.store)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
            env=agent_env(
                self.store, KIHONET_AGENT_PASSPHRASE=self.passphrase, HOME=str(self.home)
            ),
        )


def _pump(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


@pytest.fixture
def tool_home(tmp_path) -> Path:
    """The customer's HOME for the client tool: the browser store it installs into is there."""
    return tmp_path / "home"


@pytest.fixture
def tool_env() -> dict[str, str]:
    """More of the client tool's environment; a test module overrides it (e.g. stand-ins of
    the schedulers first on PATH)."""
    return {}


@pytest.fixture
def client_tool(site, tmp_path, tool_home, tool_env) -> Iterator[ClientTool]:
    """The client tool serving ``site.url`` on the port the pages are configured with."""
    store = tmp_path / "store"
    process = subprocess.Popen(
        [
            sys.executable,
            str(AGENT),
            "serve",
            "--server",
            site.url,
            "--port",
            str(site.tool_port),
            "--store",
            str(store),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=agent_env(store, KIHONET_AGENT_PASSPHRASE=PASSPHRASE, HOME=str(tool_home), **tool_env),
    )
    tool = ClientTool(process, site.tool_port, store, PASSPHRASE, tool_home)
    sink: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, sink), daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while READY not in tool.lines:
            try:
                line = sink.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the client tool did not print {READY}: {tool.lines}")
            if line is None:
                pytest.fail(f"the client tool exited: {tool.lines} {process.stderr.read()}")
            tool.lines.append(line)
        yield tool
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stderr.close()


# --------------------------------------------------------------------------- Chromium


def _new_page(browser, viewport: dict, **options):
    """A page in a fresh context; script errors and console errors (a refused fetch, a
    Content-Security-Policy violation) are collected in ``page.errors``."""
    context = browser.new_context(
        viewport=viewport, locale="ja-JP", timezone_id="Asia/Tokyo", **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and "favicon.ico" not in (message.location or {}).get("url", ""):
            errors.append(f"console: {message.text}")

    def page_error(error) -> None:
        errors.append(f"pageerror: {error}")

    page.on("console", console)
    page.on("pageerror", page_error)
    page.errors = errors
    return page


def _close(page) -> None:
    errors = list(page.errors)
    page.context.close()
    assert not errors, f"errors in the browser: {errors}"


@pytest.fixture
def page(browser):
    """A page in a PC window (1280x900)."""
    page = _new_page(browser, PC_VIEWPORT)
    yield page
    _close(page)


@pytest.fixture
def phone_page(browser):
    """A page on a phone (375x812, touch)."""
    page = _new_page(browser, PHONE_VIEWPORT, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield page
    _close(page)


@pytest.fixture
def screenshot(request) -> Callable[..., Path]:
    """``screenshot(page, "step")`` saves ``artifacts/screenshots/<test>-<step>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(page, step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


NARROW_VIEWPORT = {"width": 375, "height": 812}


@pytest.fixture
def screenshots(screenshot) -> Callable[..., list[Path]]:
    """``screenshots(page, "step")``: the page at 1280 px and at 375 px wide (a phone), each
    saved; at 375 px nothing may be wider than the screen. The page is left at 1280 px."""

    def take(page, step: str) -> list[Path]:
        page.set_viewport_size(PC_VIEWPORT)
        wide = screenshot(page, f"{step}-1280")
        page.set_viewport_size(NARROW_VIEWPORT)
        narrow = screenshot(page, f"{step}-375")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        page.set_viewport_size(PC_VIEWPORT)
        assert width <= NARROW_VIEWPORT["width"], f"{step}: {width} px wide at 375 px"
        return [wide, narrow]

    return take
