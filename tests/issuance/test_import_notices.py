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
