"""Issue 18 end to end, on Linux for real: the tool enrolls into the browser's NSS store,
auto-renewal is enabled (a systemd user timer), the server's clock stands where the certificate
is inside its renewal window, and the command the timer runs renews it: the NSS store then holds
the new certificate's key and no longer the old one's, and the desk's screen shows 自動更新：有効."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography.hazmat.primitives.serialization import pkcs12
from django.urls import reverse
from django.utils import timezone

from issuance.client_tool import kihonet_agent as agent
from issuance.models import Certificate
from tests.backoffice.helpers import otp_verify
from tests.factories import make_customer, make_notice, make_user

from .helpers import PASSPHRASE, agent_env, notice_fields, run_agent
from .nss import nss_keys, require_nss_tools

pytestmark = pytest.mark.django_db(transaction=True)


def held_key_id(store: Path, serial: str) -> str:
    key, _, _ = pkcs12.load_key_and_certificates(
        (store / f"{serial}.p12").read_bytes(), PASSPHRASE.encode()
    )
    return agent.key_id(key)


def test_r09_r10_enrolled_pc_with_auto_renewal_renews_by_itself_inside_its_window(
    live_server,
    live_ca,
    store_dir,
    schedulers,
    client,
    admin_user,
):
    require_nss_tools()
    user = make_user(make_customer(started_using=True))
    notice = make_notice(user)
    fields = notice_fields(notice)
    # Acquired 3 years less 10 days ago (the server's clock then): inside its window now.
    with time_machine.travel(timezone.now() - timedelta(days=3 * 365 - 10)):
        enrolled = run_agent(
            "enroll", "--server", live_server.url, *fields, "--yes", store=store_dir
        )
    assert enrolled.returncode == 0, enrolled.stderr
    old = Certificate.objects.get(user=user)
    home = store_dir.parent / "home"
    database = home / ".local" / "share" / "pki" / "nssdb"
    assert held_key_id(store_dir, old.serial) in nss_keys(database)

    env = {**schedulers, "KIHONET_AGENT_PLATFORM": "linux"}
    enabled = run_agent(
        "auto-renew", "--enable", "--yes", "--server", live_server.url,
        "--store", str(store_dir), store=store_dir, **env,
    )  # fmt: skip
    assert enabled.returncode == 0, enabled.stderr
    service = (home / ".config" / "systemd" / "user" / "kihonet-auto-renew.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_start.removeprefix("ExecStart="))

    import subprocess

    scheduled = subprocess.run(
        command, env=agent_env(store_dir, **env), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr

    new = Certificate.objects.get(renewed_from=old)
    keys = nss_keys(database)
    assert held_key_id(store_dir, new.serial) in keys
    assert held_key_id(store_dir, old.serial) not in keys
    page = otp_verify(client, admin_user).get(
        reverse("admin:issuance_kihonetuser_change", args=[user.pk])
    )
    assert "自動更新：有効" in page.content.decode()
