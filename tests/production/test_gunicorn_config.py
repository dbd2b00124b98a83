"""gunicorn's effective configuration from deploy/gunicorn.conf.py: threaded workers that keep
connections, no control socket at the path every instance of the user would share, and the
redacting logger."""

from __future__ import annotations

import subprocess
import sys

from tests.production.test_hardening import ROOT, production_env


def effective_config(**env: str) -> dict[str, str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--print-config",
            "-c",
            "deploy/gunicorn.conf.py",
            "kihonet.wsgi:application",
        ],
        cwd=ROOT,
        env={**production_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pairs = (line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_production_gunicorn_config_loads_with_threaded_workers_that_keep_connections():
    settings = effective_config(GUNICORN_WORKERS="4")
    assert settings["worker_class"] == "gthread" and settings["threads"] == "2"
    assert settings["workers"] == "4"  # GUNICORN_WORKERS
    # Longer than nginx's upstream keepalive_timeout (60 s): nginx closes idle connections.
    assert int(settings["keepalive"]) > 60


def test_gunicorn_has_no_shared_control_socket():
    settings = effective_config()
    assert settings["control_socket_disable"] == "True"


def test_gunicorn_logs_through_the_redacting_logger():
    assert effective_config()["logger_class"] == "kihonet.gunicorn_logging.RedactingLogger"
