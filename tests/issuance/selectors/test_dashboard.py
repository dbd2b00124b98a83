"""issuance.selectors.dashboard: a desk's figures computed from the database (R15: only the
desk's customers), and the recent mismatch alerts (R03)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from issuance import audit, roles
from issuance.models import Certificate, InputLock, KihonetUser, MismatchAlert
from issuance.selectors.dashboard import CHART_MONTHS, dashboard, recent_mismatch_alerts
from issuance.services.certificates import revoke_certificate
from notifications.models import ExpiryReminder
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk, make_staff
from tests.factories import make_customer, make_user

pytestmark = pytest.mark.django_db

DESK_A = "団体保険課"
DESK_B = "名古屋法人サービス課"


def user_of(line: str) -> KihonetUser:
    return make_user(make_customer(product_lines=(line,), started_using=True))


def reminder(certificate: Certificate, status: str) -> ExpiryReminder:
    return ExpiryReminder.objects.create(
        certificate=certificate,
        stage=30,
        status=status,
        email=certificate.email,
        message_id=f"<{certificate.serial}@example.jp>",
        sent_at=timezone.now() if status == "sent" else None,
    )


@pytest.fixture
def figures_data(db) -> dict[str, KihonetUser]:
    a, b = user_of("総合福祉団体定期保険"), user_of("総合医療保険(団体型)")
    make_certificate(a, days_left=400)
    reminder(make_certificate(a, days_left=20), "sent")
    reminder(make_certificate(a, days_left=3), "failed")
    gone = make_certificate(a, days_left=300)
    revoke_certificate(gone, reason="keyCompromise", actor=audit.Actor.system("test"))
    make_certificate(b, days_left=5)
    until = timezone.now() + timedelta(minutes=30)
    code = a.customer.kihonet_code
    InputLock.objects.create(
        kind=InputLock.Kind.PERSON, value=code, user_id=a.user_id, locked_until=until
    )
    InputLock.objects.create(
        kind=InputLock.Kind.PERSON,
        value=code,
        user_id=a.user_id,
        locked_until=until,
        lifted_at=timezone.now(),
    )
    InputLock.objects.create(kind=InputLock.Kind.STAFF_LOGIN, value="staff1", locked_until=until)
    return {"a": a, "b": b}


def test_r15_a_desks_figures_count_only_its_customers(figures_data):
    mine = dashboard(desk(DESK_A))
    assert (mine.valid, mine.expiring_30, mine.expiring_7) == (3, 2, 1)  # not the revoked one
    assert (mine.reminders_sent_today, mine.reminders_failed_today) == (1, 1)
    assert mine.locked_notices == 1  # not the lifted lock, not a staff sign-in
    assert len(mine.months) == CHART_MONTHS and sum(bar.count for bar in mine.months) == 3

    other = dashboard(desk(DESK_B))
    assert (other.valid, other.expiring_7, other.locked_notices) == (1, 1, 0)
    assert (other.reminders_sent_today, other.reminders_failed_today) == (0, 0)

    everyone = dashboard(None)
    assert (everyone.valid, everyone.expiring_7, everyone.locked_notices) == (4, 2, 1)


def test_the_figures_are_computed_afresh_on_every_call(figures_data):
    before = dashboard(desk(DESK_B)).valid
    make_certificate(figures_data["b"], days_left=700)
    assert dashboard(desk(DESK_B)).valid == before + 1


def test_r03_recent_mismatch_alerts_are_the_desks_of_the_last_24_hours(figures_data):
    a, b = figures_data["a"], figures_data["b"]
    recent = MismatchAlert.objects.create(
        kihonet_code=a.customer.kihonet_code, failures=50, window_seconds=3600
    )
    old = MismatchAlert.objects.create(
        kihonet_code=a.customer.kihonet_code, failures=50, window_seconds=3600
    )
    MismatchAlert.objects.filter(pk=old.pk).update(raised_at=timezone.now() - timedelta(hours=25))
    MismatchAlert.objects.create(
        kihonet_code=b.customer.kihonet_code, failures=50, window_seconds=3600
    )
    clerk = make_staff(roles.CLERK, desk(DESK_A))
    [row] = recent_mismatch_alerts(clerk, None)
    assert (row.alert, row.customer) == (recent, a.customer)
    supervisor = make_staff(roles.SUPERVISOR)
    assert len(recent_mismatch_alerts(supervisor, None)) == 2
    [chosen] = recent_mismatch_alerts(supervisor, desk(DESK_B))
    assert chosen.customer == b.customer
