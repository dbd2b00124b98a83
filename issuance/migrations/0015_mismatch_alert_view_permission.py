"""Both roles see the alerts on many mismatches for one company (issuance.roles)."""

import importlib

from django.db import migrations

ROLES = ("窓口担当者", "スーパーバイザー")


def grant(apps, schema_editor):
    roles = importlib.import_module("issuance.migrations.0007_backoffice_roles")
    roles._ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(
        content_type__app_label="issuance", codename="view_mismatchalert"
    )
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="issuance", codename="view_mismatchalert"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("issuance", "0014_person_and_staff_login_locks_mismatch_alert")]

    operations = [migrations.RunPython(grant, revoke)]
