from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from issuance import audit
from issuance.rules.notice_file import RowError
from issuance.services.notice_import import import_file


class Command(BaseCommand):
    help = (
        "Imports customers, users and notices from the core system's CSV file "
        "(Shift_JIS/CP932 or UTF-8 with or without BOM, detected; --encoding overrides)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--encoding",
            help="the file's encoding: shift_jis (read as CP932) or utf-8; detected when omitted",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file: Path, encoding: str | None, no_progress: bool, **options):
        try:
            data = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from error

        def progress(rows):
            return tqdm(rows, unit="行", disable=no_progress, file=self.stderr._out)

        try:
            report = import_file(
                data,
                file_name=file.name,
                actor=audit.Actor.system("import_notices"),
                encoding=encoding,
                progress=progress,
            )
        except RowError as error:
            raise CommandError(f"{file.name}: {error}") from error
        for line in report.error_lines():
            self.stderr.write(line)
        self.stdout.write(f"文字コード: {report.encoding_label}")
        self.stdout.write(report.summary())
        if not report.ok:
            raise CommandError(f"{len(report.errors)}行を取り込めませんでした。", returncode=1)
