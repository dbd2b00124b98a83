"""Auto-renewal on the server: the renewal-info window (RFC 9773 in spirit) inside R09, spread
per certificate, moved by the CA with an audit event; the tool's signed check-in (no replay);
the 30-day mail (R10) and the desk's user screen."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import datetime, timedelta
from functools import partial

import pytest
from django.core import mail
from django.utils import timezone

from issuance import audit
from issuance.models import AuditEvent, AutoRenewal, RenewalChallenge, RenewalWindowMove
from issuance.pki import pop
from issuance.rules import renewal_info
from issuance.selectors.certificates import renewal_info_for_serial
from issuance.services import auto_renewal
from tests.csr import make_csr
from tests.issuance.services.test_renewal import (
    NOT_AFTER,
    OPENS_AT,
    issue_old,
    jst,
    renew_with,
    renewal_ca,  # noqa: F401 (a fixture)
    sign,
    travel,
)
from tests.issuance.test_renewal_api import CHALLENGE_URL, RENEW_URL, assert_error, post

pytestmark = pytest.mark.django_db

STAFF = audit.Actor.system("test")


@pytest.fixture
def old(renewal_ca):  # noqa: F811
    return issue_old()


def info_url(serial: str) -> str:
    return f"/api/v1/certificates/{serial}/renewal-info"


def report_url(serial: str) -> str:
    return f"/api/v1/certificates/{serial}/auto-renewal"


def report_challenge(client, certificate) -> str:
    response = post(
        client, CHALLENGE_URL, {"certificate": certificate.pem, "purpose": "auto_renewal_report"}
    )
    assert response.status_code == 201, response.json()
    return response.json()["challenge"]


def report_body(certificate, key, challenge: str, enabled: bool = True) -> dict:
    signed = pop.sign_challenge(key, renewal_info.report_message(challenge, enabled))
    return {
        "certificate": certificate.pem,
        "challenge": challenge,
        "signature": base64.b64encode(signed).decode(),
        "enabled": enabled,
    }


# --- The pure rule ----------------------------------------------------------------------------


def serials(count: int) -> list[str]:
    return [f"{n:040X}" for n in range(1, count + 1)]


def test_r09_suggested_windows_lie_inside_the_renewal_window_and_are_deterministic():
    for serial in serials(500):
        window = renewal_info.suggested_window(
            serial=serial, opens_at=OPENS_AT, not_after=NOT_AFTER, offered_from=jst(2026, 1, 1)
        )
        assert OPENS_AT <= window.start < window.end <= NOT_AFTER
        assert window.start < OPENS_AT + renewal_info.SPREAD
        again = renewal_info.suggested_window(
            serial=serial, opens_at=OPENS_AT, not_after=NOT_AFTER, offered_from=jst(2026, 1, 1)
        )
        assert again == window


def test_r09_a_wave_of_certificates_expiring_together_is_spread_over_the_hours():
    """2,000 certificates with one expiry: without the spread all would start in one hour."""
    starts = Counter(
        renewal_info.suggested_window(
            serial=serial, opens_at=OPENS_AT, not_after=NOT_AFTER, offered_from=OPENS_AT
        ).start.replace(minute=0, second=0)
        for serial in serials(2000)
    )
    assert len(starts) > 250  # of 336 hours in two weeks
    assert max(starts.values()) <= 20
    unspread = {
        renewal_info.suggested_window(
            serial=serial,
            opens_at=OPENS_AT,
            not_after=NOT_AFTER,
            offered_from=OPENS_AT,
            spread=timedelta(0),
        ).start
        for serial in serials(50)
    }
    assert unspread == {OPENS_AT}


def test_r11_window_starts_no_earlier_than_the_start_date_and_none_after_expiry():
    late = jst(2029, 5, 1)
    window = renewal_info.suggested_window(
        serial="AB", opens_at=OPENS_AT, not_after=NOT_AFTER, offered_from=late
    )
    assert late <= window.start < NOT_AFTER
    assert (
        renewal_info.suggested_window(
            serial="AB", opens_at=OPENS_AT, not_after=NOT_AFTER, offered_from=NOT_AFTER
        )
        is None
    )


def test_retry_after_is_at_most_six_hours_and_points_at_a_near_start():
    window = renewal_info.Window(OPENS_AT, OPENS_AT + timedelta(days=1))
    assert renewal_info.retry_after(window, OPENS_AT - timedelta(days=3)) == timedelta(hours=6)
    assert renewal_info.retry_after(window, OPENS_AT - timedelta(hours=2)) == timedelta(hours=2)
    assert renewal_info.retry_after(window, OPENS_AT + timedelta(hours=2)) == timedelta(hours=6)


# --- The API ----------------------------------------------------------------------------------


def test_r09_renewal_info_answers_the_window_inside_r09_with_retry_after(client, old):
    _key, certificate = old
    with travel(jst(2029, 1, 1)):
        response = client.get(info_url(certificate.serial), secure=True)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "valid"
    start = datetime.fromisoformat(body["suggestedWindow"]["start"])
    end = datetime.fromisoformat(body["suggestedWindow"]["end"])
    assert OPENS_AT <= start < end <= NOT_AFTER
    assert int(response["Retry-After"]) == 6 * 3600


def test_renewal_info_of_unknown_or_malformed_serials_is_a_json_4xx(client, renewal_ca):  # noqa: F811
    response = client.get(info_url("0" * 39 + "1"), secure=True)
    assert_error(response, 404, "3495")
    response = client.get(info_url("not-a-serial"), secure=True)
    assert_error(response, 400, "3400")


def test_renewal_info_of_a_renewed_certificate_has_no_window(client, old):
    key, certificate = old

    with travel(OPENS_AT + timedelta(days=1)):
        renew_with(certificate, key)
        body = client.get(info_url(certificate.serial), secure=True).json()
    assert body == {"serial": certificate.serial, "status": "renewed", "suggestedWindow": None}


def test_r09_the_ca_moves_a_window_to_now_with_an_audit_event(client, old):
    """「今すぐ更新」: inside R09 it starts now; before R09, at the opening (never earlier)."""
    _key, certificate = old
    inside = OPENS_AT + timedelta(days=3, hours=5)
    with travel(inside):
        moved = auto_renewal.move_renewal_windows(
            [certificate], start=inside, reason="CA incident", actor=STAFF
        )
        body = client.get(info_url(certificate.serial), secure=True).json()
    assert moved == 1
    assert datetime.fromisoformat(body["suggestedWindow"]["start"]) == inside
    assert body["moved"] is True
    event = AuditEvent.objects.get(action="renewal_window_moved")
    assert event.reason == "CA incident" and event.detail["serial"] == certificate.serial

    early = OPENS_AT - timedelta(days=40)
    with travel(early):
        auto_renewal.move_renewal_windows(
            [certificate], start=early, reason="CA incident", actor=STAFF
        )
        info = renewal_info_for_serial(certificate.serial, early)
    assert info.window.start == OPENS_AT
    assert RenewalWindowMove.objects.count() == 1

    auto_renewal.restore_renewal_windows([certificate], reason="over", actor=STAFF)
    assert not RenewalWindowMove.objects.exists()
    assert AuditEvent.objects.filter(action="renewal_window_restored").count() == 1


def test_moving_a_window_needs_a_reason_and_writes_nothing_without_one(old):
    _key, certificate = old
    with pytest.raises(auto_renewal.ServiceError):
        auto_renewal.move_renewal_windows([certificate], start=OPENS_AT, reason=" ", actor=STAFF)
    assert not RenewalWindowMove.objects.exists()
    assert not AuditEvent.objects.filter(action="renewal_window_moved").exists()


def test_the_admin_action_renew_now_moves_the_selected_windows(admin_client, old):
    _key, certificate = old
    before = timezone.now()
    response = admin_client.post(
        "/admin/issuance/certificate/",
        {"action": "renew_now", "_selected_action": [certificate.pk]},
        secure=True,
    )
    assert response.status_code == 302
    move = RenewalWindowMove.objects.get(certificate=certificate)
    assert before <= move.start <= timezone.now()
    event = AuditEvent.objects.get(action="renewal_window_moved")
    assert event.actor_type == AuditEvent.ActorType.STAFF


# --- The signed check-in ----------------------------------------------------------------------


def test_the_tool_reports_auto_renewal_signed_by_the_certificates_key(client, old):
    key, certificate = old
    moment = jst(2028, 6, 1, 10)
    with travel(moment):
        challenge = report_challenge(client, certificate)
        response = post(
            client, report_url(certificate.serial), report_body(certificate, key, challenge)
        )
    assert response.status_code == 200, response.json()
    assert response.json()["enabled"] is True
    report = AutoRenewal.objects.get(certificate=certificate)
    assert report.enabled and report.checked_in_at == moment
    assert AuditEvent.objects.filter(action="auto_renewal_enabled").count() == 1

    # A second check-in moves the time only; turning it off is audited again.
    later = moment + timedelta(days=1)
    with travel(later):
        challenge = report_challenge(client, certificate)
        post(client, report_url(certificate.serial), report_body(certificate, key, challenge))
        challenge = report_challenge(client, certificate)
        off = post(
            client,
            report_url(certificate.serial),
            report_body(certificate, key, challenge, enabled=False),
        )
    assert off.status_code == 200
    report.refresh_from_db()
    assert not report.enabled and report.checked_in_at == later
    assert AuditEvent.objects.filter(action="auto_renewal_enabled").count() == 1
    assert AuditEvent.objects.filter(action="auto_renewal_disabled").count() == 1


def test_a_replayed_or_forged_check_in_is_refused(client, old):
    key, certificate = old
    with travel(jst(2028, 6, 1, 10)):
        challenge = report_challenge(client, certificate)
        body = report_body(certificate, key, challenge)
        assert post(client, report_url(certificate.serial), body).status_code == 200
        assert_error(post(client, report_url(certificate.serial), body), 403, "3480")

        # Someone with the public PEM only: another key's signature.
        challenge = report_challenge(client, certificate)
        forged = report_body(certificate, make_csr()[0], challenge)
        assert_error(post(client, report_url(certificate.serial), forged), 403, "3480")

        # The signature of "on" does not say "off".
        challenge = report_challenge(client, certificate)
        flipped = report_body(certificate, key, challenge) | {"enabled": False}
        assert_error(post(client, report_url(certificate.serial), flipped), 403, "3480")
    assert AutoRenewal.objects.get(certificate=certificate).enabled


def test_r09_a_check_in_challenge_cannot_renew(client, old):
    key, certificate = old
    with travel(OPENS_AT + timedelta(days=1)):
        challenge = report_challenge(client, certificate)
        response = post(
            client,
            RENEW_URL,
            {
                "certificate": certificate.pem,
                "challenge": challenge,
                "signature": sign(key, challenge),
                "csr": make_csr()[1],
            },
        )
    assert_error(response, 403, "3480")
    assert RenewalChallenge.objects.get().used_at is None


def test_check_in_bad_input_is_a_json_4xx(client, old):
    key, certificate = old
    with travel(jst(2028, 6, 1)):
        challenge = report_challenge(client, certificate)
        body = report_body(certificate, key, challenge)
        assert_error(
            post(client, report_url(certificate.serial), body | {"enabled": "yes"}), 400, "3400"
        )
        assert_error(post(client, report_url("XYZ"), body), 400, "3400")
        # a well-formed serial that is not the certificate's: a mismatch, not a malformed request
        assert_error(post(client, report_url("ABC"), body), 409, "3470")
        response = post(client, CHALLENGE_URL, {"certificate": certificate.pem, "purpose": "x"})
        assert_error(response, 400, "3400")


def test_r09_check_in_after_expiry_is_refused_with_the_desks(client, old):
    _key, certificate = old
    with travel(NOT_AFTER):
        response = post(
            client,
            CHALLENGE_URL,
            {"certificate": certificate.pem, "purpose": "auto_renewal_report"},
        )
    body = assert_error(response, 409, "3470")
    assert body["desks"]


# --- R10 mails and the desk's screen ----------------------------------------------------------


def _check_in(certificate, at: datetime, enabled: bool = True) -> None:
    AutoRenewal.objects.create(
        certificate=certificate, enabled=enabled, changed_at=at, checked_in_at=at
    )


def _run_reminders(day: datetime) -> None:
    from notifications.services import job

    with travel(day):
        job.send_expiry_reminders(at=day)


@pytest.mark.parametrize(
    ("checked_in", "enabled", "says_auto"),
    [
        (timedelta(days=1), True, True),
        (timedelta(days=30), True, False),  # the PC has not checked in for a month
        (timedelta(days=1), False, False),
    ],
)
def test_r10_the_30_day_mail_says_auto_renewal_is_set_when_the_pc_checked_in_recently(
    old, settings, checked_in, enabled, says_auto
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _key, certificate = old
    day = jst(2029, 4, 11, 9, 0)
    _check_in(certificate, day - checked_in, enabled)
    _run_reminders(day)
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert ("お使いのパソコンで自動更新が設定されています" in body) is says_auto
    assert (
        "以下の手順で、有効期限までに更新のお手続きをお願いいたします。" in body
    ) is not says_auto
    html = mail.outbox[0].alternatives[0][0]
    assert ("お使いのパソコンで自動更新が設定されています" in html) is says_auto


def test_r10_the_7_day_mail_is_still_sent_with_auto_renewal_and_says_if_renewal_is_done(
    old, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _key, certificate = old
    day = jst(2029, 5, 4, 9, 0)
    _check_in(certificate, day - timedelta(hours=3))
    _run_reminders(day)
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "お使いのパソコンで自動更新" not in body
    assert "有効期限まで残り7日となりました。" in body


def test_the_desk_screen_shows_auto_renewal_on_and_the_last_check_in(admin_client, old):
    _key, certificate = old
    _check_in(certificate, jst(2028, 6, 1, 10, 15))
    response = admin_client.get(
        f"/admin/issuance/kihonetuser/{certificate.user_id}/change/", secure=True
    )
    text = response.content.decode()
    assert "自動更新：有効" in text
    assert "最終確認：2028/06/01 10:15" in text


# --- Racing one challenge (PostgreSQL row locks) ----------------------------------------------

RACE_ROUNDS = 5


@pytest.mark.django_db(transaction=True)
def test_r09_two_check_ins_racing_one_challenge_give_exactly_one_success(postgres, issuing_ca):
    """The same one-time challenge, an "on" and an "off" check-in signed over it, sent at once
    (threads behind a barrier, real PostgreSQL): one is taken, the other refused (3480); the
    setting is the winner's and only a change is audited."""
    from issuance.errors import ProofOfPossessionError
    from issuance.services import renewal
    from issuance.tokens import digest
    from tests.issuance.services.test_enrollment import run_together

    key, certificate = issue_old(issued_at=timezone.now() - timedelta(days=1))

    def check_in(challenge: str, enabled: bool) -> AutoRenewal:
        return auto_renewal.report_auto_renewal(
            serial=certificate.serial,
            certificate_pem=certificate.pem,
            challenge=challenge,
            signature=report_body(certificate, key, challenge, enabled)["signature"],
            enabled=enabled,
            ip_address="127.0.0.1",
        )

    setting = None
    changes = 0
    for round_number in range(RACE_ROUNDS):
        offered, challenge = renewal.create_challenge(
            certificate.pem, RenewalChallenge.Purpose.AUTO_RENEWAL_REPORT
        )
        results = run_together(
            *[partial(check_in, challenge, enabled) for enabled in (True, False)]
        )
        won = [r for r in results if isinstance(r, AutoRenewal)]
        refused = [r for r in results if isinstance(r, ProofOfPossessionError)]
        assert (len(won), len(refused)) == (1, 1), f"round {round_number}: {results!r}"
        changes += won[0].enabled != setting
        setting = won[0].enabled
        assert AutoRenewal.objects.get(certificate=certificate).enabled is setting
        used = RenewalChallenge.objects.get(challenge_digest=digest(challenge))
        assert used.pk == offered.pk and used.used_at is not None
    assert AutoRenewal.objects.count() == 1
    audited = AuditEvent.objects.filter(
        action__in=("auto_renewal_enabled", "auto_renewal_disabled")
    ).count()
    assert audited == changes


@pytest.mark.django_db(transaction=True)
def test_r12_two_renewals_with_other_keys_racing_one_challenge_give_exactly_one_certificate(
    postgres, issuing_ca
):
    """Two renewals signed over the same challenge, each with a CSR of its own new key, at
    once: one new certificate; the other is refused as a request for another key (3452)."""
    from issuance.errors import IssuedForAnotherKeyError
    from issuance.models import Certificate
    from issuance.services import renewal
    from tests.issuance.services.test_enrollment import run_together

    for round_number in range(RACE_ROUNDS):
        key, old = issue_old(issued_at=timezone.now() - timedelta(days=3 * 365 - 10))
        _offered, challenge = renewal.create_challenge(old.pem)
        request = {
            "certificate_pem": old.pem,
            "challenge": challenge,
            "signature": sign(key, challenge),
            "ip_address": "127.0.0.1",
        }
        results = run_together(
            *[partial(renewal.renew, **request, csr_data=make_csr()[1]) for _ in range(2)]
        )
        renewed = [r for r in results if isinstance(r, Certificate)]
        refused = [r for r in results if isinstance(r, IssuedForAnotherKeyError)]
        assert (len(renewed), len(refused)) == (1, 1), f"round {round_number}: {results!r}"
        assert list(Certificate.objects.filter(renewed_from=old)) == renewed
        assert RenewalChallenge.objects.get(certificate=old).used_at is not None
