"""`import_notices`: good rows in, bad rows reported by line, the same file twice changes nothing."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from issuance.models import Customer, KihonetUser, Notice

pytestmark = pytest.mark.django_db

HEADER = (
    "kihonet_code,customer_name,product_line,management_number,user_id,email,"
    "notice_year,issued_on,branch_number\n"
)
GOOD = [
    "30000001,テスト商事,総合福祉団体定期保険;団体信用生命保険,AB00000001,TU00001,a@example.jp,2026,2026-04-01,001",
    "30000001,テスト商事,総合福祉団体定期保険,AB00000002,TU00002,b@example.jp,2026,2026-12-30,001",
    "３０００００２,全角工業,(新)団体定期保険,ＡＢ０００００００３, TU00003 ,C@Example.jp,2026,2026-05-01,001",
    "30000001,テスト商事,総合福祉団体定期保険,AB00000001,TU00001,new@example.jp,2026,2026-06-01,002",
]


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "notices.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_import(path: Path) -> tuple[str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_notices", str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_good_file_imports_customers_users_and_notices(tmp_path):
    # Row 3 has a full-width code that is not 8 digits after normalising: it must fail.
    rows = [*GOOD[:2], GOOD[3]]
    out, _ = run_import(write_csv(tmp_path, rows))
    assert "取込: 3件" in out
    customer = Customer.objects.get(kihonet_code="30000001")
    assert {p.name for p in customer.product_lines.all()} == {
        "総合福祉団体定期保険",
        "団体信用生命保険",
    }
    assert KihonetUser.objects.count() == 2
    reissue = Notice.objects.get(user__user_id="TU00001", branch_number="002")
    assert reissue.kind == Notice.Kind.REISSUE and reissue.email == "new@example.jp"


def test_r02_import_derives_the_registration_year(tmp_path):
    run_import(write_csv(tmp_path, GOOD[:2]))
    year_end = Notice.objects.get(user__user_id="TU00002")
    assert (year_end.printed_year, year_end.registration_year) == (2026, 2027)
    april = Notice.objects.get(user__user_id="TU00001")
    assert (april.printed_year, april.registration_year) == (2026, 2026)


def test_full_width_input_is_normalised(tmp_path):
    row = "３００００００２,全角工業,(新)団体定期保険,ＡＢ０００００００３, TU00003 ,C@Example.jp,2026,2026-05-01,００１"
    run_import(write_csv(tmp_path, [row]))
    user = KihonetUser.objects.get(user_id="TU00003")
    assert (user.customer.kihonet_code, user.management_number, user.email) == (
        "30000002",
        "AB00000003",
        "c@example.jp",
    )


def test_importing_the_same_file_twice_changes_nothing(tmp_path):
    path = write_csv(tmp_path, [*GOOD[:2], GOOD[3]])
    run_import(path)
    before = list(Notice.objects.order_by("pk").values())
    out, _ = run_import(path)
    assert "取込: 0件, 登録済み: 3件, エラー: 0件" in out
    assert list(Notice.objects.order_by("pk").values()) == before


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_still_imported(tmp_path):
    rows = [
        GOOD[0],
        "3000001,短い,総合福祉団体定期保険,AB00000009,TU00009,x@example.jp,2026,2026-04-01,001",
        "30000009,存在しない商品,架空保険,AB00000010,TU00010,y@example.jp,2026,2026-04-01,001",
        "30000010,日付誤り,総合福祉団体定期保険,AB00000011,TU00011,z@example.jp,2025,2026-04-01,001",
        "30000011,メール誤り,総合福祉団体定期保険,AB00000012,TU00012,not-an-address,2026,2026-04-01,001",
        "30000001,テスト商事,総合福祉団体定期保険,AB00000001,TU00001,a@example.jp,2026,2026-04-02,001",
        GOOD[1],
    ]
    path = write_csv(tmp_path, rows)
    with pytest.raises(CommandError) as raised:
        run_import(path)
    assert raised.value.returncode == 1
    assert set(Notice.objects.values_list("user__user_id", flat=True)) == {"TU00001", "TU00002"}
    assert Customer.objects.filter(kihonet_code__in=["30000009", "30000010"]).count() == 0


def test_bad_rows_messages(tmp_path, capsys):
    rows = ["3000001,短い,総合福祉団体定期保険,AB00000009,TU00009,x@example.jp,2026,2026-04-01,001"]
    from io import StringIO

    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_notices",
            str(write_csv(tmp_path, rows)),
            "--no-progress",
            stdout=StringIO(),
            stderr=err,
        )
    assert "2行目: 企保ネットコードは半角数字8桁でご入力ください。" in err.getvalue()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run_import(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- files as they come

# 髙 and 﨑 are CP932 vendor characters (IBM extensions): plain Shift_JIS has neither.
VENDOR_ROW = (
    "30000021,髙﨑商事,総合福祉団体定期保険,AB00000021,TU00021,t@example.jp,2026,2026-04-01,001"
)


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "notices.csv"
    path.write_bytes(data)
    return path


def csv_text(rows: list[str], newline: str = "\n") -> str:
    return newline.join([HEADER.rstrip("\n"), *rows]) + newline


@pytest.mark.parametrize(
    ("encoding", "newline", "label"),
    [
        ("cp932", "\r\n", "Shift_JIS（CP932）"),
        ("cp932", "\n", "Shift_JIS（CP932）"),
        ("utf-8", "\r\n", "UTF-8"),
        ("utf-8-sig", "\r\n", "UTF-8"),
        ("utf-8-sig", "\n", "UTF-8"),
    ],
)
def test_the_encoding_and_line_ends_are_detected(tmp_path, encoding, newline, label):
    """Excel's Shift_JIS (CP932 with vendor characters), UTF-8 with or without BOM, CRLF or LF."""
    data = csv_text([VENDOR_ROW, GOOD[0]], newline).encode(encoding)
    out, err = run_import(write_bytes(tmp_path, data))
    assert f"文字コード: {label}" in out
    assert "取込: 2件, 登録済み: 0件, エラー: 0件" in out, err
    customer = Customer.objects.get(kihonet_code="30000021")
    assert customer.name == "髙﨑商事"
    assert KihonetUser.objects.get(user_id="TU00021").email == "t@example.jp"


def test_encoding_option_overrides_the_detection(tmp_path):
    """A CP932 file that happens to be valid UTF-8 too would be read as UTF-8; --encoding says."""
    data = csv_text([VENDOR_ROW]).encode("cp932")
    from io import StringIO

    out = StringIO()
    call_command(
        "import_notices",
        str(write_bytes(tmp_path, data)),
        "--encoding",
        "shift_jis",
        "--no-progress",
        stdout=out,
        stderr=StringIO(),
    )
    assert "文字コード: Shift_JIS（CP932）" in out.getvalue()
    assert Customer.objects.get(kihonet_code="30000021").name == "髙﨑商事"


def test_a_wrong_encoding_option_names_the_line_and_imports_nothing(tmp_path):
    data = csv_text([GOOD[0], VENDOR_ROW]).encode("cp932")
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_notices",
            str(write_bytes(tmp_path, data)),
            "--encoding",
            "utf-8",
            "--no-progress",
        )
    message = str(raised.value)
    assert "2行目" in message and "UTF-8として読み取れない文字があります" in message
    assert "取り込みは行っていません" in message
    assert Customer.objects.count() == 0 and Notice.objects.count() == 0


def test_an_unknown_encoding_option_is_a_clear_error(tmp_path):
    path = write_csv(tmp_path, GOOD[:1])
    with pytest.raises(CommandError, match="文字コード「latin-9」には対応していません"):
        call_command("import_notices", str(path), "--encoding", "latin-9", "--no-progress")


def test_an_undecodable_file_names_the_line_imports_nothing_and_is_audited(tmp_path):
    """Good rows first, then a line that is neither UTF-8 nor CP932: a Japanese error naming
    that line, no traceback, and not even the good rows imported."""
    from issuance.models import AuditEvent

    good = csv_text(GOOD[:2]).encode("utf-8")
    data = good + b"30000031,\x82\xff\xff,x\r\n"  # 0x82 0xFF: not CP932, not UTF-8
    with pytest.raises(CommandError) as raised:
        run_import(write_bytes(tmp_path, data))
    message = str(raised.value)
    assert message.startswith("notices.csv: 4行目: 文字コードを判定できません")
    assert "Traceback" not in message
    assert Customer.objects.count() == 0 and Notice.objects.count() == 0
    refused = AuditEvent.objects.get(action="notices_import_refused")
    assert refused.detail["file"] == "notices.csv" and "4行目" in refused.detail["error"]


def test_a_file_the_csv_reader_refuses_is_a_clear_error_not_a_traceback(tmp_path):
    data = csv_text([GOOD[0], "30000001," + "x" * 200_000]).encode("utf-8")
    with pytest.raises(CommandError, match="3行目: CSVとして読み取れません"):
        run_import(write_bytes(tmp_path, data))
    assert Customer.objects.count() == 0


def test_leading_zeros_a_spreadsheet_dropped_are_reported_per_row_not_guessed(tmp_path):
    """An 8-digit code saved as a number (01234567 → 1234567) and 枝番 001 → 1: reported with
    their line, never padded back; the good row is still imported."""
    rows = [
        "1234567,ゼロ落ち商事,総合福祉団体定期保険,AB00000041,TU00041,z1@example.jp,2026,2026-04-01,001",
        "01234568,枝番ゼロ落ち,総合福祉団体定期保険,AB00000042,TU00042,z2@example.jp,2026,2026-04-01,1",
        GOOD[0],
    ]
    from io import StringIO

    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_notices",
            str(write_bytes(tmp_path, csv_text(rows, "\r\n").encode("cp932"))),
            "--no-progress",
            stdout=StringIO(),
            stderr=err,
        )
    lines = err.getvalue().splitlines()
    assert any(
        line.startswith("2行目: 企保ネットコードは半角数字8桁でご入力ください。")
        and "「1234567」は7桁です。表計算ソフトで先頭の0が消えた可能性があります" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("3行目: 枝番は半角数字3桁でご入力ください。") and "「1」は1桁です" in line
        for line in lines
    ), lines
    assert not Customer.objects.filter(
        kihonet_code__in=["01234567", "1234567", "01234568"]
    ).exists()
    assert set(Notice.objects.values_list("user__user_id", flat=True)) == {"TU00001"}


def test_the_import_is_audited_with_its_counts(tmp_path):
    from issuance.models import AuditEvent

    run_import(write_csv(tmp_path, GOOD[:2]))
    event = AuditEvent.objects.get(action="notices_imported")
    assert event.actor == "import_notices"
    assert event.detail["created"] == 2 and event.detail["encoding"] == "utf-8-sig"
