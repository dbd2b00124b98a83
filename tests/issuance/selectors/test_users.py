"""issuance.selectors.users: the desk's one screen of a customer user and the preview of a
reissue (R09, R10, R15, R16), read from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from issuance import audit
from issuance.models import Certificate, InputLock, KihonetUser, ReissueRecord
from issuance.selectors.users import may_resend_reminder, reissue_preview, user_overview
from issuance.services.certificates import revoke_certificate
from tests.backoffice.conftest import make_certificate
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db


def revoked(user: KihonetUser, days_left: int) -> Certificate:
    certificate = make_certificate(user, days_left=days_left)
    actor = audit.Actor.system("test")
    return revoke_certificate(certificate, reason="keyCompromise", actor=actor)


@pytest.fixture
def user(db) -> KihonetUser:
    customer = make_customer(product_lines=("総合福祉団体定期保険",), started_using=True)
    return make_user(customer)


def test_r16_the_overview_marks_the_replaced_notice_and_lists_the_certificates(user):
    first = make_notice(user, used_at=timezone.now())
    second = make_notice(user, branch_number="002")
    due = make_certificate(user, days_left=20)  # inside the renewal window (R09)
    later = make_certificate(user, days_left=400)
    gone = revoked(user, days_left=200)
    make_certificate(make_user(user.customer))  # a colleague's

    overview = user_overview(user)
    assert [(row.notice, row.is_replaced) for row in overview.notices] == [
        (first, True),
        (second, False),
    ]
    rows = {row.certificate: row for row in overview.certificates}
    assert list(rows) == [later, gone, due]  # the latest expiry first
    assert (rows[due].in_renewal_window, rows[due].may_resend, rows[due].is_valid) == (
        True,
        True,
        True,
    )
    assert (rows[later].in_renewal_window, rows[later].may_resend) == (False, False)
    assert (rows[gone].is_valid, rows[gone].may_resend) == (False, False)
    assert [rows[c].status for c in (due, later, gone)] == ["valid", "valid", "revoked"]
    assert overview.has_valid_certificate
    assert overview.product_lines == ["総合福祉団体定期保険"]
    assert {row.desk for row in overview.desks} == {"団体保険課", "法人サービスセンター"}  # R15


def test_the_overview_shows_this_users_locks_and_events_only(user):
    colleague = make_user(user.customer)
    code = user.customer.kihonet_code
    until = timezone.now() + timedelta(minutes=30)
    mine = InputLock.objects.create(
        kind=InputLock.Kind.PERSON, value=code, user_id=user.user_id, locked_until=until
    )
    company = InputLock.objects.create(
        kind=InputLock.Kind.KIHONET_CODE, value=code, locked_until=until
    )
    InputLock.objects.create(
        kind=InputLock.Kind.PERSON, value=code, user_id=colleague.user_id, locked_until=until
    )
    for someone in (user, colleague):
        audit.record(audit.Actor.system("enrollment"), "email_confirmed", kihonet_user=someone)

    overview = user_overview(user)
    assert set(overview.input_locks) == {mine, company}
    assert set(overview.active_locks) == {mine, company}
    assert [event.kihonet_user_id for event in overview.audit_events] == [user.pk]
    assert overview.reminders == []


def test_r09_r10_a_reminder_is_resent_only_from_the_window_until_the_expiry(user):
    now = timezone.now()
    assert may_resend_reminder(make_certificate(user, days_left=29), now)
    assert may_resend_reminder(make_certificate(user, days_left=3), now)  # the 7-day stage
    assert not may_resend_reminder(make_certificate(user, days_left=45), now)
    assert not may_resend_reminder(make_certificate(user, days_left=-1), now)
    assert not may_resend_reminder(revoked(user, days_left=10), now)


def test_r16_the_reissue_preview_names_what_the_reissue_will_do(user):
    used = make_notice(user, used_at=timezone.now())
    open_notice = make_notice(user, branch_number="002")
    valid = make_certificate(user, days_left=300)
    make_certificate(user, days_left=-5)  # expired
    revoked(user, days_left=100)

    lost = reissue_preview(user, ReissueRecord.Reason.PC_LOST, "003")
    assert (lost.branch_number, lost.revokes_now) == ("003", True)
    assert lost.certificates == [valid]  # only what is still valid is revoked
    assert lost.open_notices == [open_notice]
    assert used not in lost.open_notices
    assert not reissue_preview(user, ReissueRecord.Reason.PC_CHANGE, "003").revokes_now

    make_notice(user, branch_number="003")
    assert reissue_preview(user, ReissueRecord.Reason.PC_CHANGE, "004").open_notices == [
        user.notices.get(branch_number="003")
    ]  # 002 is replaced now


def test_each_certificate_row_carries_its_status_from_the_model(user):
    """The screen's 状態 comes from Certificate.status_at, the one home of valid/revoked/expired."""
    expired = make_certificate(user, days_left=-1)
    revoked_after_expiry = revoked(user, days_left=-5)
    valid = make_certificate(user, days_left=100)

    rows = {row.certificate: row for row in user_overview(user).certificates}

    assert [
        (rows[c].status, rows[c].status.label) for c in (expired, revoked_after_expiry, valid)
    ] == [
        ("expired", "期限切れ"),
        ("revoked", "失効"),
        ("valid", "有効"),
    ]
