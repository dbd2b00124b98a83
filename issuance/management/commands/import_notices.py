from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from issuance import audit
from issuance.notice_import import RowError, import_notices, read_rows


class Command(BaseCommand):
    help = "Imports customers, users and notices from the core system's CSV file."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file: Path, no_progress: bool, **options):
        try:
            with file.open(encoding="utf-8-sig", newline="") as handle:
                total = max(sum(1 for _ in handle) - 1, 0)
                handle.seek(0)
                rows = tqdm(
                    read_rows(handle),
                    total=total,
                    unit="行",
                    disable=no_progress,
                    file=self.stderr._out,
                )
                report = import_notices(rows)
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from error
        except RowError as error:
            raise CommandError(str(error)) from error
        audit.record(
            audit.Actor.system("import_notices"),
            "notices_imported",
            detail={
                "file": file.name,
                "created": report.created,
                "unchanged": report.unchanged,
                "errors": len(report.errors),
            },
        )
        for line_number, message in report.errors:
            self.stderr.write(f"{line_number}行目: {message}")
        self.stdout.write(
            f"取込: {report.created}件, 登録済み: {report.unchanged}件, "
            f"エラー: {len(report.errors)}件"
        )
        if not report.ok:
            raise CommandError(f"{len(report.errors)}行を取り込めませんでした。", returncode=1)
