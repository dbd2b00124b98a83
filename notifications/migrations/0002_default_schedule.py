"""The default schedule of the nightly jobs, editable by superusers in the admin.

django-celery-beat's DatabaseScheduler reads these rows; CELERY_BEAT_SCHEDULE is not used, since
the scheduler would write it over the admin's changes at every start of beat.  A row that exists
already (by name) is left as it is.
"""

from django.db import migrations
from django.utils import timezone

TIME_ZONE = "Asia/Tokyo"

# (name, task, minute, hour, description)
DEFAULT_TASKS = [
    ("send-expiry-reminders", "notifications.tasks.send_expiry_reminders", "0", "9",
     "有効期限の30日前・7日前の更新案内メール（毎日 9:00）"),
    ("expire-certificates", "issuance.tasks.expire_certificates", "5", "0",
     "有効期限を過ぎた証明書を期限切れにする（毎日 0:05）"),
    ("refresh-crl", "issuance.tasks.refresh_crl", "0", "*",
     "CRLの再発行（毎時 0分）"),
]


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, task, minute, hour, description in DEFAULT_TASKS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*",
            timezone=TIME_ZONE,
        )
        PeriodicTask.objects.create(name=name, task=task, crontab=crontab,
                                    description=description, enabled=True)
    # Tells a running beat to reload its schedule.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in DEFAULT_TASKS]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create_schedule, remove_schedule),
    ]
