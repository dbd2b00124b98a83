"""Importing the core system's notice file: the rows ``issuance.rules.notice_file`` read and
checked, written as customers, users and notices. One service behind ``import_notices`` and the
admin's upload, so both read the file alike and give the same per-row report."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction

from issuance import audit
from issuance.models import Customer, KihonetUser, Notice, ProductLine
from issuance.rules import formats
from issuance.rules.business_days import registration_year
from issuance.rules.notice_file import (
    FileDecodeError,
    ImportReport,
    NoticeRow,
    RowError,
    decode,
    parse_row,
    read_rows,
    text_lines,
)

Rows = Iterable[tuple[int, dict[str, str]]]


def _product_lines(names: tuple[str, ...]) -> list[ProductLine]:
    found = {p.name: p for p in ProductLine.objects.filter(name__in=names)}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise RowError(f"商品名が登録されていません: {', '.join(unknown)}")
    return [found[n] for n in names]


def _customer(row: NoticeRow) -> Customer:
    customer, _ = Customer.objects.get_or_create(
        kihonet_code=row.kihonet_code, defaults={"name": row.customer_name}
    )
    if customer.name != row.customer_name:
        raise RowError("企保ネットコードが別のお客様名で登録されています。")
    customer.product_lines.add(*_product_lines(row.product_lines))
    return customer


def _user(row: NoticeRow, customer: Customer) -> KihonetUser:
    user, _ = KihonetUser.objects.get_or_create(
        user_id=row.user_id,
        defaults={
            "customer": customer,
            "management_number": row.management_number,
            "email": row.email,
        },
    )
    if user.customer_id != customer.pk or user.management_number != row.management_number:
        raise RowError("ユーザーIDが別のお客様または管理番号で登録されています。")
    return user


def _notice_fields(row: NoticeRow) -> dict:
    first = row.branch_number == formats.FIRST_BRANCH_NUMBER
    return {
        "kind": Notice.Kind.NEW if first else Notice.Kind.REISSUE,
        "printed_year": row.notice_year,
        "registration_year": registration_year(row.issued_on),
        "issued_on": row.issued_on,
        "email": row.email,
    }


@transaction.atomic
def import_row(row: NoticeRow) -> bool:
    """Imports one row; True when it created the notice, False when it was there already."""
    user = _user(row, _customer(row))
    fields = _notice_fields(row)
    notice, created = Notice.objects.get_or_create(
        user=user, branch_number=row.branch_number, defaults=fields
    )
    if not created and any(getattr(notice, k) != v for k, v in fields.items()):
        raise RowError("同じユーザーIDと枝番の通知文書が別の内容で登録されています。")
    return created


def import_notices(rows: Iterable[tuple[int, dict[str, str]]]) -> ImportReport:
    report = ImportReport()
    for line_number, raw in rows:
        try:
            created = import_row(parse_row(raw))
        except RowError as error:
            report.errors.append((line_number, str(error)))
            continue
        if created:
            report.created += 1
        else:
            report.unchanged += 1
    return report


def read_file(data: bytes, *, encoding: str | None = None) -> tuple[list, str]:
    """Every data row of the file, read before anything is imported (a file that cannot be
    decoded or parsed raises FileDecodeError and imports nothing), and the codec used."""
    text, codec = decode(data, encoding)
    return list(read_rows(text_lines(text))), codec


def import_file(
    data: bytes,
    *,
    file_name: str,
    actor: audit.Actor,
    encoding: str | None = None,
    progress: Callable[[list], Rows] | None = None,
) -> ImportReport:
    """Imports every good row of the file (each row all or nothing) and reports each bad row
    with its line number; the import and its audit event are one transaction. A file that
    cannot be read is refused whole, and the refusal is audited too."""
    try:
        rows, codec = read_file(data, encoding=encoding)
    except FileDecodeError as error:
        audit.record(
            actor, "notices_import_refused", detail={"file": file_name, "error": str(error)}
        )
        raise
    with transaction.atomic():
        report = import_notices(progress(rows) if progress else rows)
        report.encoding = codec
        audit.record(
            actor,
            "notices_imported",
            detail={
                "file": file_name,
                "encoding": codec,
                "created": report.created,
                "unchanged": report.unchanged,
                "errors": len(report.errors),
                "error_lines": [line for line, _message in report.errors][:100],
            },
        )
    return report
