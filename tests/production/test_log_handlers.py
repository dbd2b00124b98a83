"""Every log handler of the configured logging redacts: no logger writes a line
around kihonet.logging.RedactingFilter, Django's runserver and request loggers included.

Checked in a fresh process with production settings, where pytest's own capture handlers are
not in the way.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.production.test_hardening import ROOT, production_env

PROBE = r"""
import json, logging, django
django.setup()
import django.core.handlers.base, django.core.servers.basehttp  # their loggers, as in use
from kihonet.logging import RedactingFilter

def redacts(logger, handler):
    return any(isinstance(f, RedactingFilter) for f in [*handler.filters, *logger.filters])

loggers = [logging.getLogger()] + [
    logger for logger in logging.Logger.manager.loggerDict.values()
    if isinstance(logger, logging.Logger)
]
unfiltered = sorted(
    f"{logger.name}: {type(handler).__name__}"
    for logger in loggers for handler in logger.handlers
    if not isinstance(handler, logging.NullHandler) and not redacts(logger, handler)
)
print(json.dumps(unfiltered))
logging.getLogger("django.server").info(
    '"%s" %s %s', "POST /api/v1/enrollments/Secret-Token_1/confirm HTTP/1.1", 200, 48
)
logging.getLogger("django.request").warning("Not Found: %s", "/api/v1/enrollments/Secret-Token_2/confirm")
"""


def test_every_handler_of_every_logger_redacts_and_runserver_lines_are_redacted():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=production_env(DJANGO_SETTINGS_MODULE="kihonet.settings"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "Secret-Token" not in result.stderr, result.stderr
    assert '"POST /api/v1/enrollments/***/confirm HTTP/1.1" 200 48' in result.stderr
    assert "Not Found: /api/v1/enrollments/***/confirm" in result.stderr
