"""The nightly expiry bookkeeping (R08): every expiry once in the audit trail, on its user."""

import threading
from datetime import UTC, timedelta

import pytest
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from issuance import labels
from issuance.models import AuditEvent, Certificate
from issuance.services.expiry import record_expiries
from tests.notifications.helpers import make_certificate

pytestmark = pytest.mark.django_db


def recorded() -> list[str]:
    """The serials of the certificate_expired events, one entry per event."""
    return sorted(
        AuditEvent.objects.filter(action="certificate_expired").values_list(
            "detail__serial", flat=True
        )
    )


def runs() -> list[dict]:
    return list(
        AuditEvent.objects.filter(action="certificates_expired")
        .order_by("pk")
        .values_list("detail", flat=True)
    )


def test_r08_each_expiry_is_recorded_once_on_its_user_and_revoked_ones_not_at_all():
    now = timezone.now()
    past = make_certificate(not_after=now - timedelta(days=400))
    at_now = make_certificate(not_after=now)
    soon = make_certificate(not_after=now + timedelta(seconds=1))
    revoked = make_certificate(not_after=now - timedelta(days=1), revoked=True)

    assert record_expiries(now) == 2
    assert recorded() == sorted([past.serial, at_now.serial])
    event = AuditEvent.objects.get(action="certificate_expired", object_id=str(past.pk))
    assert (event.actor_type, event.actor, event.object_type) == (
        "system",
        "expire_certificates",
        "certificate",
    )
    assert event.kihonet_user_id == past.user_id
    assert event.detail == {"serial": past.serial, "not_after": past.not_after.isoformat()}
    assert labels.audit_action(event.action) == "証明書の有効期限切れ"

    assert record_expiries(now) == 0  # the same moment again
    assert record_expiries(now + timedelta(minutes=1)) == 1  # only the one expired since
    assert record_expiries(now + timedelta(minutes=1)) == 0
    assert recorded() == sorted([past.serial, at_now.serial, soon.serial])
    assert revoked.serial not in recorded()
    assert [run["count"] for run in runs()] == [2, 0, 1, 0]
    assert runs()[0]["through"] == now.astimezone(UTC).isoformat()


def test_r08_a_certificate_expiring_between_two_runs_is_recorded_by_the_second():
    now = timezone.now()
    first = make_certificate(not_after=now - timedelta(hours=1))
    between = make_certificate(not_after=now + timedelta(hours=12))
    later = make_certificate(not_after=now + timedelta(days=2))
    revoked_between = make_certificate(not_after=now + timedelta(hours=6), revoked=True)

    assert record_expiries(now) == 1
    assert record_expiries(now + timedelta(days=1)) == 1
    assert recorded() == sorted([first.serial, between.serial])
    assert record_expiries(now + timedelta(days=3)) == 1
    assert recorded() == sorted([first.serial, between.serial, later.serial])
    assert revoked_between.serial not in recorded()
    # A run told of an earlier moment than the last one's bound records nothing again.
    assert record_expiries(now) == 0
    assert runs()[-1]["through"] == runs()[-2]["through"]


def test_r08_the_first_run_after_the_stored_state_covers_every_expiry_so_far():
    """The events of the runs that set the stored state have no bound: they are not a start."""
    now = timezone.now()
    old = make_certificate(not_after=now - timedelta(days=30))
    AuditEvent.objects.create(
        actor_type="system",
        actor="expire_certificates",
        action="certificates_expired",
        detail={"count": 1, "at": (now - timedelta(days=1)).isoformat()},
    )
    assert record_expiries(now) == 1
    assert recorded() == [old.serial]


def test_r08_the_desks_user_history_shows_the_expiry(admin_client):
    certificate = make_certificate(not_after=timezone.now() - timedelta(days=1))
    record_expiries()
    page = admin_client.get(
        reverse("admin:issuance_kihonetuser_change", args=[certificate.user_id])
    ).content.decode()
    assert "証明書の有効期限切れ" in page
    assert f"シリアル番号：{certificate.serial}" in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r08_two_runs_at_once_record_each_expiry_once(postgres):
    """The first run holds its transaction open until the second is seen waiting for the
    lock (or has finished, which it must not before the first commits)."""
    now = timezone.now()
    expired = {make_certificate(not_after=now - timedelta(days=d)).serial for d in range(1, 6)}
    first_done = threading.Event()
    second_finished = threading.Event()
    results: dict[str, object] = {}

    def waiting_for_a_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return cursor.fetchone()[0] > 0

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = record_expiries(now)
                first_done.set()
                for _ in range(200):
                    if second_finished.is_set() or waiting_for_a_lock():
                        break
                    second_finished.wait(0.05)
                results["second finished before the first committed"] = second_finished.is_set()
        except Exception as error:  # reported by the assertions below
            results["first"] = error
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_done.wait(30)
            results["second"] = record_expiries(now + timedelta(seconds=1))
        except Exception as error:
            results["second"] = error
        finally:
            second_finished.set()
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert results == {
        "first": 5,
        "second finished before the first committed": False,
        "second": 0,
    }
    assert recorded() == sorted(expired)
    assert [run["count"] for run in runs()] == [5, 0]
    assert Certificate.objects.count() == 5
