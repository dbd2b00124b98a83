"""R13: the client tool, as downloaded from the site, acquires against the running server."""

import os
import subprocess
import sys

import pytest
from django.urls import reverse

from issuance.models import Certificate
from tests.client_tool.helpers import notice_fields
from tests.factories import make_notice

pytestmark = pytest.mark.django_db(transaction=True)


def run_tool(tool, *args, store):
    # HOME of the test's own: the tool installs into the browser's store of that home.
    home = store.parent / "home"
    env = {
        **os.environ,
        "KIHONET_AGENT_PASSPHRASE": "pc password",
        "HOME": str(home),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # not the developer's keyring
    }
    env.pop("XDG_DATA_HOME", None)
    return subprocess.run(
        [sys.executable, str(tool), *args, "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_r13_downloaded_tool_enrolls_from_the_command_line(live_server, live_ca, tmp_path, client):
    tool = tmp_path / "kihonet_agent.py"
    response = client.get(reverse("issuance:client-tool"))
    assert response["Content-Disposition"].startswith("attachment")
    tool.write_bytes(b"".join(response.streaming_content))

    notice = make_notice()
    user = notice.user
    store = tmp_path / "store"
    result = run_tool(
        tool,
        "enroll",
        "--server",
        live_server.url,
        *notice_fields(notice),
        "--yes",
        store=store,
    )
    assert result.returncode == 0, result.stderr
    assert "クライアント証明書の作成が完了しました" in result.stdout
    certificate = Certificate.objects.get(user=user)

    listing = run_tool(tool, "list", store=store)
    assert certificate.serial in listing.stdout and user.user_id in listing.stdout

    again = run_tool(
        tool,
        "enroll",
        "--server",
        live_server.url,
        "--kihonet-code",
        user.customer.kihonet_code,
        "--management-number",
        user.management_number,
        "--user-id",
        "ZZ99999",
        "--year",
        str(notice.registration_year),
        "--branch-number",
        "001",
        "--email",
        notice.email,
        "--yes",
        store=store,
    )
    assert again.returncode == 1
    assert "入力情報エラー（ステータスコード：3420）" in again.stderr
