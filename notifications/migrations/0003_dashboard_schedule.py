"""The back office's dashboard figures, computed every 4 minutes ahead of the staff."""

from django.db import migrations
from django.utils import timezone

NAME = "refresh-dashboards"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="*/4", hour="*", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="Asia/Tokyo",
    )
    PeriodicTask.objects.create(
        name=NAME, task="issuance.tasks.refresh_dashboards", crontab=crontab, enabled=True,
        description="バックオフィスのダッシュボードの集計（4分ごと）",
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [("notifications", "0002_default_schedule")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
