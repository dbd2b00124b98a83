from datetime import date

from django.core.management.base import BaseCommand, CommandError

from notifications import selectors, tasks
from notifications.services import job

STAGE_LABELS = {30: "30日前", 7: "7日前"}


class Command(BaseCommand):
    help = "Sends the due 30-day and 7-day expiry reminders now (R10)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--today",
            metavar="YYYY-MM-DD",
            help="run as if it were 09:00 Japan time on this day (default: now)",
        )

    def handle(self, *args, today: str | None, **options):
        try:
            at = selectors.daily_run_time(date.fromisoformat(today)) if today else None
        except ValueError as error:
            raise CommandError(f"--today: {error}") from error
        run = job.send_expiry_reminders(at=at)
        tasks.schedule_wakeup(run.next_attempt_at, today)
        for stage, count in run.counts.items():
            self.stdout.write(
                f"{STAGE_LABELS[stage]}の案内: 送信 {count.sent}件, スキップ {count.skipped}件, "
                f"失敗 {count.failed}件, 再送待ち {count.retrying}件"
            )
