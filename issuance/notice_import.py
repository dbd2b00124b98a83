"""Importing customers, users and notices as the insurer's core system hands them over."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from issuance import formats
from issuance.business_days import registration_year
from issuance.models import Customer, KihonetUser, Notice, ProductLine

COLUMNS = [
    "kihonet_code",
    "customer_name",
    "product_line",
    "management_number",
    "user_id",
    "email",
    "notice_year",
    "issued_on",
    "branch_number",
]
PRODUCT_LINE_SEPARATOR = ";"


class RowError(Exception):
    """A row that cannot be imported; the message says why, in Japanese."""


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class NoticeRow:
    kihonet_code: str
    customer_name: str
    product_lines: tuple[str, ...]
    management_number: str
    user_id: str
    email: str
    notice_year: int
    issued_on: date
    branch_number: str


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """The CSV's data rows with their line numbers; the header must name every column."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise RowError(f"見出し行に列がありません: {', '.join(missing)}")
    for row in reader:
        yield reader.line_num, row


def _check(value: str, validator) -> str:
    try:
        validator(value)
    except ValidationError as error:
        raise RowError(error.messages[0]) from error
    return value


def parse_row(raw: dict[str, str]) -> NoticeRow:
    get = lambda name: formats.normalize_field(raw.get(name) or "")  # noqa: E731
    code = lambda name: formats.normalize_code(raw.get(name) or "")  # noqa: E731
    try:
        issued_on = date.fromisoformat(get("issued_on"))
    except ValueError as error:
        raise RowError("issued_on は YYYY-MM-DD の日付で記載してください。") from error
    year = _check(get("notice_year"), formats.validate_year)
    if int(year) != issued_on.year:
        raise RowError("notice_year が issued_on の年と一致しません。")
    lines = tuple(p.strip() for p in get("product_line").split(PRODUCT_LINE_SEPARATOR) if p.strip())
    if not lines:
        raise RowError("product_line がありません。")
    if not get("customer_name"):
        raise RowError("customer_name がありません。")
    return NoticeRow(
        kihonet_code=_check(code("kihonet_code"), formats.validate_kihonet_code),
        customer_name=get("customer_name"),
        product_lines=lines,
        management_number=_check(code("management_number"), formats.validate_management_number),
        user_id=_check(code("user_id"), formats.validate_user_id),
        email=_check(formats.normalize_email(raw.get("email") or ""), validate_email),
        notice_year=int(year),
        issued_on=issued_on,
        branch_number=_check(code("branch_number"), formats.validate_branch_number),
    )


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
