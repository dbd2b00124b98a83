"""Supervisors may upload the core system's notice file in the admin (import_notices)."""

from django.db import migrations

SUPERVISOR = "スーパーバイザー"
CODENAME = "import_notices"


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="issuance", model="notice")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename=CODENAME,
        defaults={"name": "通知文書ファイルを取り込める"},
    )
    group, _ = Group.objects.get_or_create(name=SUPERVISOR)
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="issuance", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("issuance", "0012_help_texts_without_rule_ids"),
        ("issuance", "0007_backoffice_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="notice",
            options={
                "ordering": ["user", "branch_number"],
                "permissions": [
                    ("reissue_notice", "再発行できる"),
                    ("print_notice", "通知文書を印刷できる"),
                    ("import_notices", "通知文書ファイルを取り込める"),
                ],
                "verbose_name": "通知文書",
                "verbose_name_plural": "通知文書",
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
