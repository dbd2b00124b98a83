"""The back office's roles as groups with their permissions (issuance.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "窓口担当者": [
        "view_productline", "view_servicedesk", "view_deskcontact", "view_customer",
        "view_kihonetuser", "view_notice", "view_certificate", "view_reissuerecord",
        "view_auditevent", "view_inputlock", "view_enrollment",
        "reissue_notice", "print_notice", "resend_reminder", "lift_input_lock",
    ],
}
ROLES["スーパーバイザー"] = ROLES["窓口担当者"] + [
    "revoke_certificate", "export_data", "view_crlpublication", "view_renewalchallenge",
    "notifications.view_expiryreminder",
]


def _ensure_permissions(apps) -> None:
    """Permissions are normally made after migrate; the groups need them now. (A migration's
    app config has no models module; the real one, when called with the real registry, keeps
    its own.)"""
    for label in ("issuance", "notifications"):
        config = apps.get_app_config(label)
        previous = getattr(config, "models_module", None)
        config.models_module = previous or True
        try:
            create_permissions(config, apps=apps, verbosity=0)
        finally:
            config.models_module = previous


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    _ensure_permissions(apps)
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for entry in codenames:
            app_label, _, codename = entry.rpartition(".")
            permissions.append(Permission.objects.get(
                content_type__app_label=app_label or "issuance", codename=codename
            ))
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("issuance", "0006_staff_profile_and_permissions"),
        ("notifications", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
