"""The data model refuses bad formats at the database too, not only in forms (R01)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from issuance.models import AuditEvent, Certificate, Customer, KihonetUser, Notice
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db


# What PostgreSQL says refused a value longer than its column (a DataError names no constraint).
TOO_LONG = "value too long"


def assert_refused_by_database(create, constraint: str) -> None:
    """``create`` is refused by the database, by ``constraint`` (its name) or, with
    ``TOO_LONG``, by the column's length: not by some other rule that happens to fire."""
    with pytest.raises((IntegrityError, DataError)) as refused, transaction.atomic():
        create()
    if connection.vendor != "postgresql":
        return  # only PostgreSQL's driver names the constraint (psycopg's ``diag``)
    if constraint == TOO_LONG:
        assert isinstance(refused.value, DataError) and TOO_LONG in str(refused.value)
    else:
        assert refused.value.__cause__.diag.constraint_name == constraint, refused.value


def format_or_length(value: str, length: int, constraint: str) -> str:
    return TOO_LONG if len(value) > length else constraint


@pytest.mark.parametrize("code", ["1234567", "123456789", "1234567a", "１２３４５６７８"])
def test_r01_kihonet_code_is_eight_half_width_digits(code):
    assert_refused_by_database(
        lambda: Customer.objects.create(kihonet_code=code, name="x"),
        format_or_length(code, 8, "customer_kihonet_code_format"),
    )
    with pytest.raises(ValidationError):
        Customer(kihonet_code=code, name="x").full_clean()


@pytest.mark.parametrize("user_id", ["ABC123", "ABC12345", "ABC-123", "ＡＢＣ１２３４"])
def test_r01_user_id_is_seven_half_width_alphanumerics(user_id):
    customer = make_customer()
    assert_refused_by_database(
        lambda: KihonetUser.objects.create(
            customer=customer, user_id=user_id, management_number="AB12345678", email="a@example.jp"
        ),
        format_or_length(user_id, 7, "user_user_id_format"),
    )


@pytest.mark.parametrize("number", ["AB1234567", "AB123456789", "AB1234567!"])
def test_r01_management_number_is_ten_half_width_alphanumerics(number):
    customer = make_customer()
    assert_refused_by_database(
        lambda: KihonetUser.objects.create(
            customer=customer, user_id="ABC1234", management_number=number, email="a@example.jp"
        ),
        format_or_length(number, 10, "user_management_number_format"),
    )


@pytest.mark.parametrize("branch", ["01", "0001", "0a1"])
def test_r01_branch_number_is_three_digits(branch):
    user = make_user()
    assert_refused_by_database(
        lambda: make_notice(user, branch_number=branch, kind="reissue"),
        format_or_length(branch, 3, "notice_branch_number_format"),
    )


def test_r01_a_new_notice_always_has_branch_001():
    user = make_user()
    assert_refused_by_database(
        lambda: make_notice(user, branch_number="002", kind="new"), "notice_new_is_branch_001"
    )


def test_r16_a_user_has_one_notice_per_branch_number():
    notice = make_notice()
    assert_refused_by_database(lambda: make_notice(notice.user), "unique_notice_branch")


def test_r02_registration_year_is_the_printed_year_or_the_next():
    user = make_user()
    assert_refused_by_database(
        lambda: make_notice(user, printed_year=2026, registration_year=2028),
        "notice_registration_year_rule",
    )


def test_user_id_is_unique():
    user = make_user()
    assert_refused_by_database(
        lambda: make_user(user_id=user.user_id), "issuance_kihonetuser_user_id_key"
    )


def make_certificate(user, **fields) -> Certificate:
    now = timezone.now()
    defaults = {
        "serial": "1A2B3C",
        "subject": "CN=x",
        "email": user.email,
        "not_before": now,
        "not_after": now + timedelta(days=1095),
        "pem": "-",
        "fingerprint": "a" * 64,
        "public_key_fingerprint": "b" * 64,
    }
    defaults.update(fields)
    return Certificate.objects.create(user=user, **defaults)


def test_certificate_serial_is_upper_hex_and_unique():
    user = make_user()
    make_certificate(user)
    assert_refused_by_database(
        lambda: make_certificate(user, fingerprint="c" * 64, public_key_fingerprint="d" * 64),
        "certificate_serial_unique",
    )
    assert_refused_by_database(
        lambda: make_certificate(
            user, serial="1a2b", fingerprint="e" * 64, public_key_fingerprint="f" * 64
        ),
        "certificate_serial_format",
    )


def test_a_public_key_is_certified_once():
    user = make_user()
    make_certificate(user)
    assert_refused_by_database(
        lambda: make_certificate(user, serial="FF", fingerprint="c" * 64),
        "certificate_public_key_fingerprint_unique",
    )


def test_certificate_querysets_answer_the_service_questions():
    user = make_user()
    now = timezone.now()
    soon = make_certificate(user, not_after=now + timedelta(days=10))
    later = make_certificate(
        user,
        serial="02",
        fingerprint="1" * 64,
        public_key_fingerprint="2" * 64,
        not_after=now + timedelta(days=100),
    )
    gone = make_certificate(
        user,
        serial="03",
        fingerprint="3" * 64,
        public_key_fingerprint="4" * 64,
        revoked_at=now,
    )
    assert set(Certificate.objects.valid()) == {soon, later}
    assert set(Certificate.objects.revoked()) == {gone}
    assert list(Certificate.objects.expiring_between(now, now + timedelta(days=30))) == [soon]


def test_r08_a_certificates_status_is_derived_from_revoked_at_and_not_after_alone():
    user = make_user()
    now = timezone.now()
    rows = {
        "valid": {"not_after": now + timedelta(seconds=1)},
        "expired": {"not_after": now},
        "revoked": {"not_after": now + timedelta(days=1), "revoked_at": now},
        "revoked after its expiry": {
            "not_after": now - timedelta(days=1),
            "revoked_at": now - timedelta(hours=1),
        },
    }
    made = {
        name: make_certificate(
            user,
            serial=f"{n:X}",
            fingerprint=f"{n:064x}",
            public_key_fingerprint=f"{n + 100:064x}",
            not_before=now - timedelta(days=1095),
            **fields,
        )
        for n, (name, fields) in enumerate(rows.items(), start=10)
    }
    assert {name: c.status_at(now) for name, c in made.items()} == {
        "valid": "valid",
        "expired": "expired",
        "revoked": "revoked",
        "revoked after its expiry": "revoked",
    }
    assert made["valid"].status_at(now + timedelta(seconds=1)) == "expired"
    assert [made[name].status_label_at(now) for name in ("valid", "revoked", "expired")] == [
        "有効",
        "失効",
        "期限切れ",
    ]
    # The query says the same of every row, and each row is in exactly one state.
    for status in Certificate.Status.values:
        in_status = set(Certificate.objects.in_status(status, now))
        assert in_status == {c for c in made.values() if c.status_at(now) == status}, status
    assert set(Certificate.objects.expired(now)) == {made["expired"]}
    with pytest.raises(ValueError, match="unknown"):
        Certificate.objects.in_status("renewed", now)


def test_audit_events_are_append_only():
    event = AuditEvent.objects.create(actor_type="system", actor="test", action="tested")
    event.reason = "changed"
    with pytest.raises(ValueError, match="never changed"):
        event.save()
    with pytest.raises(ValueError, match="never deleted"):
        event.delete()
    assert_refused_by_database(
        lambda: AuditEvent.objects.create(actor_type="system", actor="", action="x"),
        "audit_actor_not_empty",
    )


def test_notice_accepts_printed_and_registration_year():
    notice: Notice = make_notice(printed_year=2026, registration_year=2027)
    assert notice.accepts_year(2026) and notice.accepts_year(2027)
    assert not notice.accepts_year(2025)
