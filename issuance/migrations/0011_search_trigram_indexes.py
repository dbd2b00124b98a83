"""Trigram (pg_trgm) GIN indexes for the back office's partial search on PostgreSQL.

The admin searches a part of ユーザーID, 管理番号, e-mail, 企保ネットコード and お客様名 with
Django's ``icontains``, which PostgreSQL runs as ``UPPER(column::text) LIKE UPPER('%term%')``:
each index is on that very expression, so the planner can use it. Other databases (SQLite in
development) get nothing: there the search scans, which their small tables afford.
"""

from django.db import migrations

INDEXES = [
    ("kihonetuser_user_id_trgm", "issuance_kihonetuser", "user_id"),
    ("kihonetuser_management_number_trgm", "issuance_kihonetuser", "management_number"),
    ("kihonetuser_email_trgm", "issuance_kihonetuser", "email"),
    ("customer_kihonet_code_trgm", "issuance_customer", "kihonet_code"),
    ("customer_name_trgm", "issuance_customer", "name"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("issuance", "0010_fingerprint_by_serial_audit_action_index")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
