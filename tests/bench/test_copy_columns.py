"""The benchmarks' bulk inserts take their columns from the model, not from a list of their own:
a field added to the model (with a default) or removed from it needs no change in bench/."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from bench import admin_search
from bench.core import CopyColumns, copy_text
from issuance.models import Certificate, Customer
from tests.factories import make_user


def _table_columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [
            column.name for column in connection.introspection.get_table_description(cursor, table)
        ]


def test_the_columns_are_exactly_the_certificate_tables_own_but_its_key(db):
    columns = CopyColumns(Certificate)

    assert columns.table == "issuance_certificate"
    assert sorted(columns.columns) == sorted(
        name for name in _table_columns("issuance_certificate") if name != "id"
    )
    assert columns.columns == [f.column for f in Certificate._meta.concrete_fields][1:]


def test_with_the_primary_key_every_column_of_the_table(db):
    columns = CopyColumns(Certificate, with_primary_key=True)

    assert columns.columns[0] == "id"
    assert sorted(columns.columns) == sorted(_table_columns("issuance_certificate"))
    assert (
        columns.statement == f"COPY issuance_certificate ({', '.join(columns.columns)}) FROM STDIN"
    )


def test_a_row_puts_each_value_in_its_column_and_the_models_default_where_none_is_given():
    columns = CopyColumns(Certificate)

    row = dict(zip(columns.columns, columns.row(serial="7F", user_id=42, pem="x"), strict=True))

    assert (row["serial"], row["user_id"], row["pem"]) == ("7F", 42, "x")
    # Not given: the fields' defaults (a nullable key: NULL; a blank text: empty).
    assert row["notice_id"] is None
    assert row["renewed_from_id"] is None
    assert row["revoked_at"] is None
    assert row["revocation_reason"] == ""
    assert isinstance(row["created_at"], datetime)


def test_a_value_for_a_field_the_model_does_not_have_is_refused():
    """A typo, or a field since removed from the model, fails the bench instead of loading rows
    without that value."""
    columns = CopyColumns(Customer)

    with pytest.raises(ValueError, match="no_such_field"):
        columns.row(kihonet_code="99000001", name="ベンチ", no_such_field="dropped")


def test_the_text_defaults_are_in_copys_text_format():
    columns = CopyColumns(Certificate, text=True)

    row = dict(zip(columns.columns, columns.row(serial="7F"), strict=True))

    assert row["notice_id"] == "\\N"
    assert row["revocation_reason"] == ""
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\\N"),
        (True, "t"),
        (False, "f"),
        (7, "7"),
        (datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), "2030-01-02T03:04:05+00:00"),
        ("a\tb\nc\\d", "a\\tb\\nc\\\\d"),
    ],
)
def test_copy_text(value, text):
    assert copy_text(value) == text


def _certificate_values(user, serial: str, now: datetime) -> dict:
    return {
        "user_id": user.pk,
        "serial": serial,
        "subject": f"CN={user.user_id}",
        "email": user.email,
        "not_before": now,
        "not_after": now + timedelta(days=1095),
        "pem": "-",
        "fingerprint": "a" * 64,
        "public_key_fingerprint": serial.lower().rjust(64, "b"),
        "created_at": now,
    }


def test_a_row_copied_into_postgresql_is_the_certificate_the_bench_gave(postgres):
    """The binary-adapted path (ca, reminders): psycopg's write_row of the helper's row."""
    user = make_user()
    now = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
    columns = CopyColumns(Certificate)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(columns.statement) as copy:
        copy.write_row(columns.row(**_certificate_values(user, "BE01", now)))

    certificate = Certificate.objects.get(serial="BE01")
    assert certificate.user == user
    assert certificate.not_after == now + timedelta(days=1095)
    assert (certificate.notice, certificate.renewed_from, certificate.revoked_at) == (
        None,
        None,
        None,
    )
    assert certificate.revocation_reason == ""


def test_a_text_row_copied_into_postgresql_is_the_certificate_the_bench_gave(postgres):
    """The text path (admin_search writes its rows as text), with the text defaults."""
    user = make_user()
    now = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
    columns = CopyColumns(Certificate, text=True)
    values = {
        name: copy_text(value) for name, value in _certificate_values(user, "BE02", now).items()
    }
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        admin_search._copy(cursor, columns.table, columns.columns, [columns.row(**values)])

    certificate = Certificate.objects.get(serial="BE02")
    assert (certificate.user, certificate.created_at) == (user, now)
    assert (certificate.notice, certificate.renewed_from, certificate.revoked_at) == (
        None,
        None,
        None,
    )
