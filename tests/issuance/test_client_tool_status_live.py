"""The client tool's ``list`` asks the running server for each certificate's status."""

import pytest

from issuance.models import Certificate
from issuance.services import certificates
from tests.client_tool.helpers import notice_fields
from tests.factories import make_notice
from tests.issuance.services.test_renewal import ACTOR
from tests.issuance.test_client_tool_live import run_tool

pytestmark = pytest.mark.django_db(transaction=True)


def test_list_shows_the_status_the_server_gives(live_server, live_ca, tmp_path, client):
    tool = "issuance/client_tool/kihonet_agent.py"
    notice = make_notice()
    user, store = notice.user, tmp_path / "store"
    enrolled = run_tool(
        tool,
        "enroll",
        "--server",
        live_server.url,
        *notice_fields(notice),
        "--yes",
        "--no-install",
        store=store,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    certificate = Certificate.objects.get(user=user)

    listed = run_tool(tool, "list", "--server", live_server.url, store=store)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(certificate.serial)
    assert listed.stdout.splitlines()[0].endswith("状態：有効")

    certificates.revoke_certificate(certificate, reason="keyCompromise", actor=ACTOR)
    listed = run_tool(tool, "list", "--server", live_server.url, store=store)
    assert listed.stdout.splitlines()[0].endswith("状態：失効")

    offline = run_tool(tool, "list", store=store)
    assert offline.stdout.splitlines()[0].endswith("状態：不明（サーバーで確認できませんでした）")
