"""The rows that data migrations load (contact table, staff roles, the beat schedule).

A transactional test ends by emptying every table (a flush, which sends post_migrate), so they
are loaded again on that signal, once the last app has had its permissions made.
"""

import importlib

from django.apps import apps
from django.db.models.signals import post_migrate

DATA_MIGRATIONS = [
    ("issuance.migrations.0002_contact_table", "load_contacts"),
    ("issuance.migrations.0007_backoffice_roles", "create_roles"),
    ("issuance.migrations.0015_mismatch_alert_view_permission", "grant"),
    ("issuance.migrations.0013_notice_import_permission", "grant"),
    ("notifications.migrations.0002_default_schedule", "create_schedule"),
    ("notifications.migrations.0003_dashboard_schedule", "create_schedule"),
]


def restore() -> None:
    for module_name, function_name in DATA_MIGRATIONS:
        getattr(importlib.import_module(module_name), function_name)(apps, None)


def _on_post_migrate(sender, **kwargs) -> None:
    if sender.name == "notifications":
        restore()


def reload_after_flush() -> None:
    post_migrate.connect(_on_post_migrate, dispatch_uid="kihonet-tests-reference-data")
