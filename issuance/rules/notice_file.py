"""The notice file of the insurer's core system, read and checked row by row without the ORM
(the rows are written by ``issuance.services.notice_import``).

The files come as Japanese systems and Excel write them: Shift_JIS (in fact CP932, with its
vendor characters such as 髙 and ①), or UTF-8 with or without a BOM, with CRLF or LF line ends.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from issuance.rules import formats

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


# The encodings a file may come in, by the names people give them (``--encoding``).
ENCODING_NAMES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "utf-8": "utf-8-sig",
    "utf8": "utf-8-sig",
    "utf-8-sig": "utf-8-sig",
}
ENCODING_LABELS = {"cp932": "Shift_JIS（CP932）", "utf-8-sig": "UTF-8"}


class RowError(Exception):
    """A row that cannot be imported; the message says why, in Japanese."""


class FileDecodeError(RowError):
    """The file cannot be read as text: nothing of it is imported."""


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    def summary(self) -> str:
        return f"取込: {self.created}件, 登録済み: {self.unchanged}件, エラー: {len(self.errors)}件"

    def error_lines(self) -> list[str]:
        """One line per bad row, as the command prints them and the admin lists them."""
        return [f"{line_number}行目: {message}" for line_number, message in self.errors]


def encoding_of(name: str) -> str:
    """The codec for an ``--encoding`` name; Shift_JIS is read as CP932 (Windows, Excel)."""
    codec = ENCODING_NAMES.get(name.strip().lower())
    if codec is None:
        raise FileDecodeError(
            f"文字コード「{name}」には対応していません。Shift_JIS または UTF-8 を指定してください。"
        )
    return codec


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _try_decode(data: bytes, codec: str) -> tuple[str | None, int]:
    """The text, or None and the line where decoding failed."""
    try:
        return data.decode(codec), 0
    except UnicodeDecodeError as error:
        return None, _line_of(data, error.start)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the codec it was read with: ``encoding`` when given, else UTF-8
    (a BOM says so for sure) and then CP932. Raises FileDecodeError naming the first line that
    cannot be read."""
    if encoding:
        codec = encoding_of(encoding)
        text, line = _try_decode(data, codec)
        if text is None:
            raise FileDecodeError(
                f"{line}行目: {ENCODING_LABELS[codec]}として読み取れない文字があります。"
                "ファイルの文字コードをご確認ください。取り込みは行っていません。"
            )
        return text, codec
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8-sig", "cp932"]
    failures = []
    for codec in candidates:
        text, line = _try_decode(data, codec)
        if text is not None:
            return text, codec
        failures.append(line)
    raise FileDecodeError(
        f"{max(failures)}行目: 文字コードを判定できません（Shift_JIS（CP932）としても UTF-8 としても"
        "読み取れない文字があります）。ファイルを保存し直すか、文字コードを指定してください。"
        "取り込みは行っていません。"
    )


def text_lines(text: str) -> io.StringIO:
    """The lines of the text for the CSV reader, with CRLF, LF or CR line ends."""
    return io.StringIO(text, newline="")


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
    try:
        fieldnames = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in fieldnames]
        if missing:
            raise RowError(f"見出し行に列がありません: {', '.join(missing)}")
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        raise FileDecodeError(
            f'{reader.line_num + 1}行目: CSVとして読み取れません（項目が長すぎるか、引用符「"」の'
            "対応が正しくありません）。取り込みは行っていません。"
        ) from error


def _check(value: str, validator) -> str:
    try:
        validator(value)
    except ValidationError as error:
        raise RowError(error.messages[0]) from error
    return value


# Codes of digits whose leading zeros a spreadsheet drops when it reads them as numbers: the row
# is reported, never padded back (a short code may as well be a typing error).
ZERO_PADDED = {"kihonet_code": 8, "branch_number": 3}


def _check_digits(name: str, value: str, validator) -> str:
    try:
        return _check(value, validator)
    except RowError as error:
        width = ZERO_PADDED[name]
        if re.fullmatch(r"[0-9]+", value) and len(value) < width:
            raise RowError(
                f"{error}（{name} の「{value}」は{len(value)}桁です。表計算ソフトで先頭の0が"
                f"消えた可能性があります。元のデータで{width}桁の値を確認してください。）"
            ) from error
        raise


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
        kihonet_code=_check_digits(
            "kihonet_code", code("kihonet_code"), formats.validate_kihonet_code
        ),
        customer_name=get("customer_name"),
        product_lines=lines,
        management_number=_check(code("management_number"), formats.validate_management_number),
        user_id=_check(code("user_id"), formats.validate_user_id),
        email=_check(formats.normalize_email(raw.get("email") or ""), validate_email),
        notice_year=int(year),
        issued_on=issued_on,
        branch_number=_check_digits(
            "branch_number", code("branch_number"), formats.validate_branch_number
        ),
    )
