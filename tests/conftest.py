"""Fixtures shared by the whole suite.

Under CI=true a test that needs PostgreSQL, Redis, an SMTP server, Chromium or SoftHSM2 fails
when it is missing; elsewhere it is skipped with the reason.
"""

import itertools
import os
import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection, connections

IN_CI = os.environ.get("CI", "").lower() == "true"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every wait of a test; the whole browser suite must stay well under a minute.
TIMEOUT_MS = 15_000


def require(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


# A test that takes one of these fixtures needs that service: it carries the marker, so that
# ``pytest -m postgres`` (or ``-m "not browser"``) selects exactly the tests that need it.
MARKER_OF_FIXTURE = {
    "postgres": "postgres",
    "redis_cache": "redis",
    "smtp_server": "smtp",
    "browser": "browser",
    "page": "browser",
    "phone_page": "browser",
}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for marker in {MARKER_OF_FIXTURE[name] for name in fixtures & MARKER_OF_FIXTURE.keys()}:
            item.add_marker(marker)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI nothing skips: a skipped test there is a service CI failed to provide."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if IN_CI and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; under CI every test must run.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on loopback that Django mails through; its ``handler``
    records the messages and can refuse (``fail_first``, ``refusals``)."""
    from tests.notifications.smtp import RecordingHandler, SmtpServer

    with SmtpServer(RecordingHandler()) as server:
        server.serve_django(settings)
        yield server


@pytest.fixture(scope="session", autouse=True)
def _reference_data_after_flush():
    """A transactional test ends by emptying every table; the flush's post_migrate signal then
    loads the data migrations' rows again (contact table, roles, schedule)."""
    from tests import reference_data

    reference_data.reload_after_flush()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_client(db, admin_user, client):
    """The superuser, signed in with the second factor the back office requires (TOTP)."""
    from tests.backoffice.helpers import otp_verify

    return otp_verify(client, admin_user)


@pytest.fixture
def postgres(db):
    """For tests that prove behaviour only PostgreSQL shows (row locks, concurrency)."""
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")


def _fresh_ca(settings, tmp_path):
    from issuance import ca

    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "test passphrase"
    ca.reset()
    yield ca.create()
    ca.reset()


@pytest.fixture
def issuing_ca(settings, tmp_path):
    """A fresh root and issuing CA for the test, in a folder of its own."""
    yield from _fresh_ca(settings, tmp_path)


@pytest.fixture
def live_ca(settings, live_server, tmp_path):
    """``issuing_ca`` for a test that drives the running server: made after the settings name
    that server, so that the certificates it issues point at ``live_server.url``."""
    settings.KIHONET_BASE_URL = live_server.url
    yield from _fresh_ca(settings, tmp_path)


@pytest.fixture
def redis_cache():
    """For tests of what the shared Redis cache guarantees (atomic counts across processes)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    default = caches["default"]
    available = isinstance(default, RedisCache)
    if available:
        try:
            default._cache.get_client().ping()
        except Exception:
            available = False
    require(available, "Redis as the cache (set CACHE_URL)")
    return default


def use_token(settings, token, folder) -> None:
    """Settings for CA keys in ``token`` (a SoftToken), the PIN in a file of mode 0600."""
    pin_file = folder / "token-pin"
    pin_file.write_text(token.pin + "\n")
    pin_file.chmod(0o600)
    settings.KIHONET_CA_KEYSTORE = "pkcs11"
    settings.KIHONET_CA_PKCS11_MODULE = token.module
    settings.KIHONET_CA_PKCS11_TOKEN = token.label
    settings.KIHONET_CA_PKCS11_PIN = ""
    settings.KIHONET_CA_PKCS11_PIN_FILE = str(pin_file)


@pytest.fixture(params=["file", "pkcs11"])
def ca_store(request, settings, tmp_path):
    """Parametrizes a test over the CA key stores: "file", and "pkcs11" (a fresh SoftHSM2
    token in the settings; test ids ``[pkcs11]``). Use it before creating the CA."""
    from issuance.services import ocsp_responder

    if request.param == "pkcs11":
        use_token(settings, request.getfixturevalue("make_token")("kihonet-ca"), tmp_path)
    ocsp_responder.forget()
    yield request.param
    ocsp_responder.forget()


@pytest.fixture
def issuing_ca_each_store(ca_store, issuing_ca):
    """``issuing_ca`` once with the file store and once with the keys in SoftHSM2."""
    return issuing_ca


# ------------------------------------------------------------------ PKCS#11 (SoftHSM2)

_token_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def soft_hsm(tmp_path_factory):
    """This test process's SoftHSM2, its configuration and tokens in a temporary folder."""
    from issuance.pki import softhsm

    require(softhsm.module_path() is not None, "softhsm2 (Debian package softhsm2)")
    return softhsm.soft_hsm(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def make_token(soft_hsm):
    """Makes a fresh throwaway token: ``make_token()`` -> SoftToken(module, label, pin)."""

    def make(prefix: str = "kihonet-test"):
        return soft_hsm.create_token(f"{prefix}-{os.getpid()}-{next(_token_numbers)}")

    return make


@pytest.fixture
def browser(monkeypatch):
    """Headless Debian Chromium. Under CI=true a missing Chromium fails the test."""
    chromium = shutil.which("chromium")
    require(chromium is not None, "Chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still synchronous, so Django's guard is lifted for the browser tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            # The test's ORM calls ran while Playwright's loop was current, so their database
            # connections are kept apart from the ones pytest-django closes: close them here,
            # or PostgreSQL refuses to drop the test database ("accessed by other users").
            connections.close_all()
