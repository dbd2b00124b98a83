"""Importing the core system's notice file: one service behind ``import_notices`` and the
admin's upload, so both read the file alike and give the same per-row report."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction

from issuance import audit
from issuance.rules.notice_file import (
    FileDecodeError,
    ImportReport,
    decode,
    import_notices,
    read_rows,
    text_lines,
)

Rows = Iterable[tuple[int, dict[str, str]]]


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
