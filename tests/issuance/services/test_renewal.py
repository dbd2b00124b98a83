"""Renewal (更新) through the service: the window (R09), the start date (R11), the new
certificate (R05, R08, R12), proof of possession and two renewals at once."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography import x509
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from issuance import audit, ca
from issuance.errors import (
    CertificateRequestError,
    ProofOfPossessionError,
    RenewalError,
)
from issuance.models import AuditEvent, Certificate, RenewalChallenge
from issuance.pki import pop
from issuance.rules import renewal as renewal_rules
from issuance.services import certificates, renewal
from tests.csr import make_csr, make_key
from tests.factories import make_customer, make_user

pytestmark = pytest.mark.django_db

JST = ZoneInfo("Asia/Tokyo")
ACTOR = audit.Actor.customer("test", "127.0.0.1")
SECOND = timedelta(seconds=1)

# The CA is made in 2022 so that its ten years cover every certificate below, renewals included.
CA_CREATED = datetime(2022, 6, 1, tzinfo=UTC)

# The certificate of most tests: issued 2026-05-10 15:00 JST, so it expires 2029-05-10 15:00 JST
# and its renewal window opens at 0:00 JST on 2029-04-10 (R09).
ISSUED_AT = datetime(2026, 5, 10, 15, 0, tzinfo=JST)
NOT_AFTER = datetime(2029, 5, 10, 15, 0, tzinfo=JST)
OPENS_AT = datetime(2029, 4, 10, 0, 0, tzinfo=JST)

PRODUCT_LINE = "団体信用生命保険"
# The desks of that product line in contacts.csv (R15).
DESKS = [
    {"product_line": PRODUCT_LINE, "desk": "団体保険課", "phone": "0120-338-688"},
    {"product_line": PRODUCT_LINE, "desk": "法人サービスセンター", "phone": "0120-563-928"},
]

TOO_EARLY = "このクライアント証明書の更新は2029年4月10日から可能です。"
EXPIRED = "有効期限を経過した場合は、クライアント証明書の再発行手続きが必要です。"
NOT_YET_OFFERED = "2025年までは新規取得のみの取扱いとなります"
ALREADY_RENEWED = "このクライアント証明書はすでに更新済みです。"
REVOKED = "このクライアント証明書は失効しているため更新できません。クライアント証明書の再発行手続きが必要です。"


def jst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=JST)


def travel(moment: datetime):
    return time_machine.travel(moment, tick=False)


def create_ca(settings, tmp_path, now: datetime = CA_CREATED) -> ca.CaMaterial:
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "test passphrase"
    ca.reset()
    return ca.create(now=now)


@pytest.fixture
def renewal_ca(settings, tmp_path):
    yield create_ca(settings, tmp_path)
    ca.reset()


def make_holder(product_lines: tuple[str, ...] = (PRODUCT_LINE,)):
    """A user of a customer that has started using the service (its desks are per product)."""
    return make_user(make_customer(product_lines=product_lines, started_using=True))


def issue_old(user=None, *, issued_at: datetime = ISSUED_AT):
    """The certificate to renew and the key the PC holds for it."""
    key, csr = make_csr()
    certificate = certificates.issue_certificate(
        user=user or make_holder(), csr_data=csr, actor=ACTOR, now=issued_at
    )
    return key, certificate


def sign(key, challenge: str) -> str:
    """What the client tool sends: standard base64 of the signature over the ASCII challenge."""
    return base64.b64encode(pop.sign_challenge(key, challenge.encode("ascii"))).decode()


def renew_with(
    certificate: Certificate, key, *, challenge: str | None = None, new_key=None
) -> Certificate:
    if challenge is None:
        _issued, challenge = renewal.create_challenge(certificate.pem)
    return renewal.renew(
        certificate_pem=certificate.pem,
        challenge=challenge,
        signature=sign(key, challenge),
        csr_data=make_csr(new_key)[1],
        ip_address="127.0.0.1",
    )


# R09: the renewal window ---------------------------------------------------------------------


def test_r09_issued_certificate_has_the_expected_expiry(renewal_ca):
    _key, certificate = issue_old()
    assert certificate.not_after == NOT_AFTER
    assert renewal_rules.renewal_opens_at(certificate.not_after) == OPENS_AT


def test_r09_one_second_before_0_00_jst_on_the_opening_day_is_refused_with_the_date(renewal_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT - SECOND):
        with pytest.raises(RenewalError) as raised:
            renewal.create_challenge(certificate.pem)
        assert str(raised.value.message) == TOO_EARLY
        assert raised.value.status_code == "3470"
        # renew() checks the window before it looks at the challenge.
        with pytest.raises(RenewalError) as raised:
            renew_with(certificate, key, challenge="never-issued")
        assert str(raised.value.message) == TOO_EARLY
    assert not RenewalChallenge.objects.exists()
    assert not Certificate.objects.filter(renewed_from=certificate).exists()


def test_r09_exactly_0_00_jst_on_the_opening_day_is_accepted(renewal_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT):
        renewed = renew_with(certificate, key)
    assert renewed.renewed_from == certificate
    assert renewed.not_before == OPENS_AT


def test_r09_one_second_before_expiry_is_accepted(renewal_ca):
    key, certificate = issue_old()
    with travel(NOT_AFTER - SECOND):
        renewed = renew_with(certificate, key)
    assert renewed.renewed_from == certificate
    assert renewed.not_before == NOT_AFTER - SECOND


def test_r09_at_the_expiry_instant_renewal_is_refused_and_a_reissue_is_needed(renewal_ca):
    key, certificate = issue_old()
    with travel(NOT_AFTER - SECOND):
        _issued, challenge = renewal.create_challenge(certificate.pem)
    with travel(NOT_AFTER):
        # A challenge fetched one second earlier does not help: the expiry instant is excluded.
        with pytest.raises(RenewalError) as raised:
            renew_with(certificate, key, challenge=challenge)
        assert str(raised.value.message) == EXPIRED
        assert raised.value.detail == {"desks": DESKS}  # R15: the customer's product desks
        with pytest.raises(RenewalError) as raised:
            renewal.create_challenge(certificate.pem)
        assert str(raised.value.message) == EXPIRED
        assert raised.value.detail == {"desks": DESKS}
    assert not Certificate.objects.filter(renewed_from=certificate).exists()


@pytest.mark.parametrize(
    ("issued_at", "not_after", "opens_at"),
    [
        # Expiry in the early morning JST, still the previous day in UTC: the JST date counts.
        (jst(2026, 5, 10, 0, 30), jst(2029, 5, 10, 0, 30), jst(2029, 4, 10)),
        (jst(2026, 5, 10, 23, 59), jst(2029, 5, 10, 23, 59), jst(2029, 4, 10)),
        # 30 calendar days back across February (2029 is not a leap year).
        (jst(2026, 3, 1, 9), jst(2029, 3, 1, 9), jst(2029, 1, 30)),
    ],
)
def test_r09_window_opens_at_0_00_jst_30_days_before_the_jst_expiry_date(
    renewal_ca, issued_at, not_after, opens_at
):
    _key, certificate = issue_old(issued_at=issued_at)
    assert certificate.not_after == not_after
    assert renewal_rules.renewal_opens_at(certificate.not_after) == opens_at
    with pytest.raises(RenewalError, match="から可能です"):
        renewal.check_renewable(certificate, opens_at - SECOND)
    renewal.check_renewable(certificate, opens_at)
    renewal.check_renewable(certificate, not_after - SECOND)
    with pytest.raises(RenewalError) as raised:
        renewal.check_renewable(certificate, not_after)
    assert str(raised.value.message) == EXPIRED
    assert not renewal_rules.is_in_renewal_window(certificate, opens_at - SECOND)
    assert renewal_rules.is_in_renewal_window(certificate, opens_at)
    assert renewal_rules.is_in_renewal_window(certificate, not_after - SECOND)
    assert not renewal_rules.is_in_renewal_window(certificate, not_after)


# R11: the renewal start date ----------------------------------------------------------------


def test_r11_renewal_is_refused_before_the_start_date_and_accepted_from_it(settings, renewal_ca):
    settings.KIHONET_RENEWAL_START_DATE = date(2026, 1, 1)
    # Expires 2026-01-20 12:00 JST: inside its window on both days below.
    key, certificate = issue_old(issued_at=jst(2023, 1, 20, 12))
    with travel(jst(2025, 12, 31, 23, 59, 59)):
        assert renewal_rules.is_in_renewal_window(certificate, timezone.now())
        with pytest.raises(RenewalError) as raised:
            renewal.create_challenge(certificate.pem)
        assert str(raised.value.message) == NOT_YET_OFFERED
    with travel(jst(2026, 1, 1)):
        renewed = renew_with(certificate, key)
    assert renewed.renewed_from == certificate


def test_r11_start_date_is_a_date_in_japan_time(settings):
    settings.KIHONET_RENEWAL_START_DATE = date(2025, 1, 1)
    assert not renewal_rules.renewal_offered(datetime(2024, 12, 31, 14, 59, 59, tzinfo=UTC))
    assert renewal_rules.renewal_offered(datetime(2024, 12, 31, 15, 0, tzinfo=UTC))  # 0:00 JST


@pytest.mark.parametrize("moment", [jst(2025, 12, 31, 23, 59, 59), jst(2026, 1, 1)])
def test_r11_r12_pages_offer_the_renew_button_only_from_the_start_date(client, settings, moment):
    settings.KIHONET_RENEWAL_START_DATE = date(2026, 1, 1)
    offered = moment >= jst(2026, 1, 1)
    renew_url = reverse("issuance:renew")
    with travel(moment):
        renew_page = client.get(renew_url, secure=True)
        home_page = client.get(reverse("issuance:home"), secure=True)
    assert renew_page.status_code == home_page.status_code == 200
    renew_html, home_html = renew_page.content.decode(), home_page.content.decode()
    assert (NOT_YET_OFFERED in renew_html) is not offered
    assert (NOT_YET_OFFERED in home_html) is not offered
    assert ('id="renew-button"' in renew_html) is offered
    assert (">更新</button>" in renew_html) is offered
    assert (f'href="{renew_url}"' in home_html) is offered


def test_r11_the_notice_names_the_year_before_the_configured_start_date(
    client, settings, renewal_ca
):
    """Not a hard-coded 「2025年」: the year follows KIHONET_RENEWAL_START_DATE."""
    settings.KIHONET_RENEWAL_START_DATE = date(2028, 4, 1)
    _key, certificate = issue_old(issued_at=jst(2024, 6, 20))
    with travel(jst(2027, 6, 1)):
        pages = [client.get(reverse(n), secure=True) for n in ("issuance:home", "issuance:renew")]
        with pytest.raises(RenewalError) as raised:
            renewal.check_renewable(certificate, timezone.now())
    for page in pages:
        assert "2028年3月31日までは新規取得のみの取扱いとなります" in page.content.decode()
        assert "2025年まで" not in page.content.decode()
    assert str(raised.value.message) == "2028年3月31日までは新規取得のみの取扱いとなります"
    settings.KIHONET_RENEWAL_START_DATE = date(2029, 1, 1)
    assert (
        renewal_rules.renewal_not_yet_offered_message()
        == "2028年までは新規取得のみの取扱いとなります"
    )


# Certificates that cannot be renewed ---------------------------------------------------------


def test_r09_r16_revoked_certificate_is_refused_with_the_desks(renewal_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT):
        _issued, challenge = renewal.create_challenge(certificate.pem)
        certificates.revoke_certificate(certificate, reason="keyCompromise", actor=ACTOR)
        for attempt in (
            lambda: renewal.create_challenge(certificate.pem),
            lambda: renew_with(certificate, key, challenge=challenge),
        ):
            with pytest.raises(RenewalError) as raised:
                attempt()
            assert str(raised.value.message) == REVOKED
            assert raised.value.detail == {"desks": DESKS}
    assert not Certificate.objects.filter(renewed_from=certificate).exists()


def test_r12_an_already_renewed_certificate_is_refused(renewal_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT):
        _issued, early_challenge = renewal.create_challenge(certificate.pem)
        renew_with(certificate, key)
        # A challenge fetched before the first renewal gives no second certificate.
        with pytest.raises(RenewalError) as raised:
            renew_with(certificate, key, challenge=early_challenge)
        assert str(raised.value.message) == ALREADY_RENEWED
        with pytest.raises(RenewalError) as raised:
            renewal.create_challenge(certificate.pem)
        assert str(raised.value.message) == ALREADY_RENEWED
    assert Certificate.objects.filter(renewed_from=certificate).count() == 1


# R05, R08, R12: the new certificate ----------------------------------------------------------


def test_r05_r08_r12_renewed_certificate_keeps_subject_and_email_with_a_new_key(renewal_ca):
    key, certificate = issue_old()
    old_email = certificate.email
    # R05: a changed address on file does not reach the renewed certificate; that needs a reissue.
    certificate.user.email = "changed@example.jp"
    certificate.user.save(update_fields=["email"])
    moment = jst(2029, 4, 20, 10, 15, 30)
    new_key = make_key()
    with travel(moment):
        renewed = renew_with(certificate, key, new_key=new_key)

    old_cert = x509.load_pem_x509_certificate(certificate.pem.encode())
    new_cert = x509.load_pem_x509_certificate(renewed.pem.encode())
    assert renewed.renewed_from == certificate
    assert renewed.user == certificate.user
    assert renewed.subject == certificate.subject
    assert new_cert.subject == old_cert.subject
    assert renewed.email == old_email
    san = new_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [old_email]
    assert new_cert.public_key() == new_key.public_key()
    assert renewed.public_key_fingerprint != certificate.public_key_fingerprint
    assert renewed.serial != certificate.serial
    # R08: three years from the renewal.
    assert renewed.not_before == moment == new_cert.not_valid_before_utc
    assert renewed.not_after == jst(2032, 4, 20, 10, 15, 30) == new_cert.not_valid_after_utc

    event = AuditEvent.objects.get(action="certificate_renewed")
    assert event.detail == {"old_serial": certificate.serial, "new_serial": renewed.serial}
    assert event.kihonet_user == certificate.user


def test_r12_old_certificate_stays_valid_after_renewal_by_default(settings, renewal_ca):
    settings.KIHONET_RENEWAL_REVOKES_OLD = False
    key, certificate = issue_old()
    with travel(OPENS_AT):
        renew_with(certificate, key)
    certificate.refresh_from_db()
    assert not certificate.is_revoked
    assert certificate.status_at(NOT_AFTER - SECOND) == Certificate.Status.VALID
    assert certificate.status_at(NOT_AFTER) == Certificate.Status.EXPIRED
    assert certificate.is_valid_at(NOT_AFTER - SECOND)


def test_r12_old_certificate_is_revoked_as_superseded_when_configured(settings, renewal_ca):
    settings.KIHONET_RENEWAL_REVOKES_OLD = True
    key, certificate = issue_old()
    with travel(OPENS_AT):
        renewed = renew_with(certificate, key)
    certificate.refresh_from_db()
    assert certificate.is_revoked
    assert certificate.status_at(OPENS_AT) == Certificate.Status.REVOKED
    assert certificate.revocation_reason == "superseded"
    assert certificate.revoked_at == OPENS_AT
    renewed.refresh_from_db()
    assert not renewed.is_revoked
    # A retry of the same renewal (say the answer was lost) is told it is renewed already,
    # not sent to the desks for a reissue although it holds a new certificate.
    with travel(OPENS_AT + SECOND), pytest.raises(RenewalError) as raised:
        renewal.create_challenge(certificate.pem)
    assert str(raised.value.message) == ALREADY_RENEWED
    assert raised.value.detail == {}


def test_r12_renewal_needs_a_new_key(renewal_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT):
        _issued, challenge = renewal.create_challenge(certificate.pem)
        with pytest.raises(CertificateRequestError) as raised:
            renew_with(certificate, key, challenge=challenge, new_key=key)
        assert raised.value.detail == {"csr": "key_reused"}
        # Nothing was kept from the failed attempt: the same challenge still works.
        renewed = renew_with(certificate, key, challenge=challenge)
    assert renewed.renewed_from == certificate


# Proof of possession -------------------------------------------------------------------------


def test_r12_challenge_is_one_time_and_marked_used(settings, renewal_ca):
    settings.KIHONET_RENEWAL_CHALLENGE_MINUTES = 5
    key, certificate = issue_old()
    with travel(OPENS_AT):
        issued, challenge = renewal.create_challenge(certificate.pem)
        assert issued.expires_at == OPENS_AT + timedelta(minutes=5)
        assert issued.challenge_digest != challenge  # only a digest is stored
        renew_with(certificate, key, challenge=challenge)
    issued.refresh_from_db()
    assert issued.used_at == OPENS_AT
    # The same challenge a second time, below the renewal checks: refused as a proof.
    parsed = x509.load_pem_x509_certificate(certificate.pem.encode())
    with travel(OPENS_AT + SECOND), pytest.raises(ProofOfPossessionError):
        renewal._use_challenge(
            renewal._offered_challenge(certificate, challenge),
            parsed,
            challenge,
            sign(key, challenge),
            timezone.now(),
        )


def test_r12_challenge_signed_by_another_key_is_refused(renewal_ca):
    _key, certificate = issue_old()
    with travel(OPENS_AT):
        _issued, challenge = renewal.create_challenge(certificate.pem)
        with pytest.raises(ProofOfPossessionError) as raised:
            renew_with(certificate, make_key(), challenge=challenge)
    assert raised.value.status_code == "3480"
    assert not Certificate.objects.filter(renewed_from=certificate).exists()
    assert RenewalChallenge.objects.get().used_at is None


# Two renewals at once (PostgreSQL) ----------------------------------------------------------


ROUNDS = 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_two_renewals_at_once_give_one_new_certificate(postgres, issuing_ca):
    user = make_user(make_customer(product_lines=(), started_using=True))
    for round_number in range(ROUNDS):
        # In its window today: expires in ten days.
        key, csr = make_csr()
        certificate = certificates.issue_certificate(
            user=user,
            csr_data=csr,
            actor=ACTOR,
            now=timezone.now() - timedelta(days=3 * 365 - 10),
        )
        challenges = [renewal.create_challenge(certificate.pem)[1] for _ in range(2)]
        requests = [make_csr()[1] for _ in range(2)]
        barrier = threading.Barrier(2, timeout=30)
        results: list[object] = [None, None]

        def attempt(
            index: int,
            certificate=certificate,
            challenges=challenges,
            requests=requests,
            barrier=barrier,
            results=results,
            key=key,
        ) -> None:
            try:
                barrier.wait()
                results[index] = renewal.renew(
                    certificate_pem=certificate.pem,
                    challenge=challenges[index],
                    signature=sign(key, challenges[index]),
                    csr_data=requests[index],
                    ip_address="127.0.0.1",
                )
            except Exception as error:  # reported by the assertions below
                results[index] = error
            finally:
                connections.close_all()

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), f"round {round_number} hung"

        renewed = [r for r in results if isinstance(r, Certificate)]
        refused = [r for r in results if isinstance(r, RenewalError)]
        assert (len(renewed), len(refused)) == (1, 1), f"round {round_number}: {results!r}"
        assert str(refused[0].message) == ALREADY_RENEWED
        assert Certificate.objects.filter(renewed_from=certificate).count() == 1
        assert (
            RenewalChallenge.objects.filter(certificate=certificate, used_at__isnull=False).count()
            == 1
        )
