"""Supervisors upload the core system's notice file in the admin: the same service as
``import_notices``, the same per-row report, and the upload is audited."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from issuance import roles
from issuance.models import AuditEvent, Customer, Notice
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.issuance.services.test_notice_import import GOOD, HEADER, VENDOR_ROW

pytestmark = pytest.mark.django_db

URL = "admin:issuance_notice_import"
ZERO_DROPPED = (
    "1234567,ゼロ落ち商事,総合福祉団体定期保険,AB00000041,TU00041,z1@example.jp,2026,2026-04-01,001"
)


def upload(client, data: bytes, **fields):
    file = SimpleUploadedFile("notices.csv", data, content_type="text/csv")
    return client.post(reverse(URL), {"file": file, **fields})


def shift_jis_file(rows: list[str]) -> bytes:
    return "\r\n".join([HEADER.rstrip("\n"), *rows, ""]).encode("cp932")


def test_a_supervisor_uploads_a_shift_jis_file_and_sees_the_per_row_report():
    supervisor = make_staff(roles.SUPERVISOR, first_name="花子", last_name="監督")
    client = staff_client(supervisor)
    changelist = client.get(reverse("admin:issuance_notice_changelist"))
    assert reverse(URL) in changelist.content.decode()  # the button on the notices' list

    response = upload(client, shift_jis_file([VENDOR_ROW, ZERO_DROPPED, GOOD[0]]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "文字コード: Shift_JIS（CP932）" in page
    assert "取込: 2件, 登録済み: 0件, エラー: 1件" in page
    assert "<td>3行目</td>" in page
    assert "「1234567」は7桁です。表計算ソフトで先頭の0が消えた可能性があります" in page
    assert Customer.objects.get(kihonet_code="30000021").name == "髙﨑商事"
    assert Notice.objects.count() == 2

    event = AuditEvent.objects.get(action="notices_imported")
    assert event.staff == supervisor and event.actor_type == AuditEvent.ActorType.STAFF
    assert event.detail == {
        "file": "notices.csv",
        "encoding": "cp932",
        "created": 2,
        "unchanged": 0,
        "errors": 1,
        "error_lines": [3],
    }


def test_an_undecodable_upload_is_refused_whole_with_the_line_named():
    client = staff_client(make_staff(roles.SUPERVISOR))
    data = (HEADER + GOOD[0] + "\n").encode("utf-8") + b"x,\x82\xff\n"
    response = upload(client, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "3行目: 文字コードを判定できません" in page
    assert "取り込みは行っていません" in page
    assert Notice.objects.count() == 0
    assert AuditEvent.objects.filter(action="notices_import_refused").count() == 1


def test_the_encoding_can_be_chosen():
    client = staff_client(make_staff(roles.SUPERVISOR))
    response = upload(client, shift_jis_file([GOOD[0]]), encoding="utf-8")
    assert "2行目: UTF-8として読み取れない文字があります" in response.content.decode()
    response = upload(client, shift_jis_file([GOOD[0]]), encoding="shift_jis")
    assert "取込: 1件" in response.content.decode()


def test_clerks_cannot_upload():
    clerk = make_staff(roles.CLERK, desk=desk("団体保険課"))
    client = staff_client(clerk)
    assert (
        reverse(URL) not in client.get(reverse("admin:issuance_notice_changelist")).content.decode()
    )
    assert upload(client, shift_jis_file([GOOD[0]])).status_code == 403
    assert Notice.objects.count() == 0


def test_a_too_large_upload_is_refused_with_a_japanese_message(monkeypatch):
    from issuance.admin.forms import NoticeImportForm

    client = staff_client(make_staff(roles.SUPERVISOR))
    monkeypatch.setattr(NoticeImportForm, "MAX_BYTES", 100)
    response = upload(client, shift_jis_file([GOOD[0]]))
    assert "ファイルが大きすぎます（20MBまで）" in response.content.decode()
    assert Notice.objects.count() == 0
