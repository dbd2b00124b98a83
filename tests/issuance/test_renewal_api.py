"""Renewal through the JSON API the client tool uses: the window (R09), proof of possession
(R12) and every bad input answered as a 4xx with a status code and a Japanese message."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from django.urls import reverse

from issuance import ca
from issuance.errors import ProofOfPossessionError
from issuance.models import Certificate, RenewalChallenge
from issuance.pki import pop
from tests.csr import foreign_certificate_pem, make_csr, make_key
from tests.issuance.services.test_renewal import (
    ALREADY_RENEWED,
    DESKS,
    EXPIRED,
    NOT_AFTER,
    OPENS_AT,
    SECOND,
    TOO_EARLY,
    create_ca,
    issue_old,
    jst,
    sign,
    travel,
)

pytestmark = pytest.mark.django_db

CHALLENGE_URL = "/api/v1/renewals/challenge"
RENEW_URL = "/api/v1/renewals"
POP_MESSAGE = str(ProofOfPossessionError.message)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture
def api_ca(settings, tmp_path):
    yield create_ca(settings, tmp_path)
    ca.reset()


@pytest.fixture
def old(api_ca):
    """The key on the PC and its certificate, expiring 2029-05-10 15:00 JST."""
    return issue_old()


def post(client, url: str, body, **extra):
    if isinstance(body, dict | list):
        return client.post(url, body, content_type="application/json", secure=True, **extra)
    return client.post(url, data=body, content_type="application/json", secure=True, **extra)


def get_challenge(client, certificate: Certificate) -> str:
    response = post(client, CHALLENGE_URL, {"certificate": certificate.pem})
    assert response.status_code == 201, response.json()
    return response.json()["challenge"]


def renewal_body(certificate: Certificate, key, challenge: str, /, **overrides) -> dict:
    body = {
        "certificate": certificate.pem,
        "challenge": challenge,
        "signature": sign(key, challenge),
        "csr": make_csr()[1],
    }
    body.update(overrides)
    return body


def assert_error(response, http_status: int, status_code: str, message: str | None = None) -> dict:
    """A 4xx JSON answer with a status code and a message in Japanese; never a 500."""
    assert response.status_code == http_status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status_code
    assert JAPANESE.search(body["message"]), body
    if message is not None:
        assert body["message"] == message
    return body


def renewals_of(certificate: Certificate) -> int:
    return Certificate.objects.filter(renewed_from=certificate).count()


# The happy path (R08, R12) -----------------------------------------------------------------


def test_r08_r12_renewal_through_the_api_and_the_completion_page(client, old, api_ca):
    key, certificate = old
    with travel(OPENS_AT):
        response = post(client, CHALLENGE_URL, {"certificate": certificate.pem})
        assert response.status_code == 201
        issued = response.json()
        assert datetime.fromisoformat(issued["expires_at"]) > OPENS_AT
        response = post(client, RENEW_URL, renewal_body(certificate, key, issued["challenge"]))
    assert response.status_code == 201, response.json()
    body = response.json()
    renewed = Certificate.objects.get(serial=body["serial"])
    assert renewed.renewed_from == certificate
    assert body["certificate"] == renewed.pem
    assert body["chain"] == api_ca.chain_pem
    assert body["subject"] == certificate.subject
    assert datetime.fromisoformat(body["not_before"]) == OPENS_AT
    assert datetime.fromisoformat(body["not_after"]) == jst(2032, 4, 10)

    page = client.get(reverse("issuance:renew-complete"), {"serial": body["serial"]}, secure=True)
    assert page.status_code == 200
    html = page.content.decode()
    assert "クライアント証明書の更新が完了しました" in html
    assert "2032年4月10日 00:00" in html
    # The completion page is only for certificates made by a renewal.
    first = client.get(
        reverse("issuance:renew-complete"), {"serial": certificate.serial}, secure=True
    )
    assert first.status_code == 302


# R09 through the API -------------------------------------------------------------------------


def test_r09_api_refuses_before_the_window_with_the_opening_date(client, old):
    _key, certificate = old
    with travel(OPENS_AT - SECOND):
        response = post(client, CHALLENGE_URL, {"certificate": certificate.pem})
    body = assert_error(response, 409, "3470", TOO_EARLY)
    assert "desks" not in body


def test_r09_r15_api_refuses_at_expiry_with_the_customer_desks(client, old):
    key, certificate = old
    with travel(NOT_AFTER - SECOND):
        challenge = get_challenge(client, certificate)
    with travel(NOT_AFTER):
        renewal_response = post(client, RENEW_URL, renewal_body(certificate, key, challenge))
        challenge_response = post(client, CHALLENGE_URL, {"certificate": certificate.pem})
    for response in (renewal_response, challenge_response):
        body = assert_error(response, 409, "3470", EXPIRED)
        assert body["desks"] == DESKS
    assert renewals_of(certificate) == 0


# Proof of possession (R12) -------------------------------------------------------------------


def test_r12_challenge_signed_by_the_wrong_key_is_refused(client, old):
    _key, certificate = old
    with travel(OPENS_AT):
        challenge = get_challenge(client, certificate)
        response = post(client, RENEW_URL, renewal_body(certificate, make_key(), challenge))
    assert_error(response, 403, "3480", POP_MESSAGE)
    assert renewals_of(certificate) == 0


@pytest.mark.parametrize("limit", [10, 3])
def test_r12_challenges_of_one_certificate_are_limited_while_open(client, old, settings, limit):
    """Its PEM is public: whoever has it must not fill the table with challenges. The limit is
    the setting KIHONET_RENEWAL_MAX_OPEN_CHALLENGES."""
    settings.KIHONET_RENEWAL_MAX_OPEN_CHALLENGES = limit
    key, certificate = old
    with travel(OPENS_AT):
        challenges = [get_challenge(client, certificate) for _ in range(limit)]
        response = post(client, CHALLENGE_URL, {"certificate": certificate.pem})
        assert_error(response, 429, "3431")
        renewed = post(client, RENEW_URL, renewal_body(certificate, key, challenges[-1]))
    assert renewed.status_code == 201


def test_r12_a_used_challenge_sent_again_renews_no_second_time(client, old):
    """The same request again gets the same certificate (its answer may have been lost); with
    another new key, or after the replay time, it is refused and nothing more is issued."""
    key, certificate = old
    with travel(OPENS_AT):
        challenge = get_challenge(client, certificate)
        body = renewal_body(certificate, key, challenge)
        first = post(client, RENEW_URL, body)
        assert first.status_code == 201
        replay = post(client, RENEW_URL, body)
        replay_new_csr = post(client, RENEW_URL, {**body, "csr": make_csr()[1]})
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert_error(replay_new_csr, 409, "3452")
    with travel(OPENS_AT + timedelta(hours=24)):
        assert_error(post(client, RENEW_URL, body), 409, "3470", ALREADY_RENEWED)
    assert renewals_of(certificate) == 1
    assert RenewalChallenge.objects.get().used_at == OPENS_AT


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (timedelta(minutes=5) - SECOND, True),
        (timedelta(minutes=5), False),
        (timedelta(days=1), False),
    ],
)
def test_r12_expired_challenge_is_refused(client, settings, old, age, accepted):
    settings.KIHONET_RENEWAL_CHALLENGE_MINUTES = 5
    key, certificate = old
    with travel(OPENS_AT):
        challenge = get_challenge(client, certificate)
    with travel(OPENS_AT + age):
        response = post(client, RENEW_URL, renewal_body(certificate, key, challenge))
        if accepted:
            assert response.status_code == 201, response.json()
            return
        assert_error(response, 403, "3480", POP_MESSAGE)
        assert renewals_of(certificate) == 0
        # A fresh challenge still works.
        fresh = get_challenge(client, certificate)
        assert post(client, RENEW_URL, renewal_body(certificate, key, fresh)).status_code == 201


def test_r12_challenge_issued_for_another_certificate_is_refused(client, old):
    key, certificate = old
    other_key, other = issue_old()
    with travel(OPENS_AT):
        challenge = get_challenge(client, other)
        for signer in (key, other_key):
            response = post(client, RENEW_URL, renewal_body(certificate, signer, challenge))
            assert_error(response, 403, "3480", POP_MESSAGE)
        assert renewals_of(certificate) == 0
        # The challenge was not spent by those attempts: its own certificate can use it.
        response = post(client, RENEW_URL, renewal_body(other, other_key, challenge))
    assert response.status_code == 201, response.json()


def _garbage_signatures(key, challenge: str) -> list[str]:
    real = pop.sign_challenge(key, challenge.encode("ascii"))
    encoded = base64.b64encode(real).decode()
    return [
        "",
        "not base64!!",
        "ＡＢＣＤ",  # full-width letters
        encoded[:-4],  # cut short
        encoded[:10] + "\n" + encoded[10:],  # line breaks are not standard base64 here
        base64.urlsafe_b64encode(b"\xfb\xff" * 32).decode(),  # URL-safe alphabet
        base64.b64encode(b"\x00" * 64).decode(),
        base64.b64encode(pop.sign_challenge(key, b"another challenge")).decode(),
        "A" * 60000,
    ]


def test_r12_garbage_signatures_are_refused_without_a_500(client, old):
    key, certificate = old
    with travel(OPENS_AT):
        challenge = get_challenge(client, certificate)
        for signature in _garbage_signatures(key, challenge):
            response = post(
                client, RENEW_URL, renewal_body(certificate, key, challenge, signature=signature)
            )
            assert_error(response, 403, "3480", POP_MESSAGE)
        assert renewals_of(certificate) == 0
        # The right signature still works afterwards: garbage does not spend the challenge.
        response = post(client, RENEW_URL, renewal_body(certificate, key, challenge))
    assert response.status_code == 201


# A NUL (or another control character) in any JSON string is refused before the services with
# 400 / 3400: tests/hostile/test_bad_input.py.
@pytest.mark.parametrize("challenge", ["", "never-issued", "チャレンジ", "\x7f", "x" * 10000])
def test_r12_unknown_or_non_ascii_challenges_are_refused(client, old, challenge):
    key, certificate = old
    with travel(OPENS_AT):
        get_challenge(client, certificate)
        body = {**renewal_body(certificate, key, "placeholder"), "challenge": challenge}
        response = post(client, RENEW_URL, body)
    assert_error(response, 403, "3480", POP_MESSAGE)
    assert renewals_of(certificate) == 0


def test_r12_bad_csr_is_refused_and_the_challenge_is_kept(client, old):
    key, certificate = old
    with travel(OPENS_AT):
        challenge = get_challenge(client, certificate)
        response = post(client, RENEW_URL, renewal_body(certificate, key, challenge, csr="garbage"))
        assert_error(response, 400, "3460")
        assert RenewalChallenge.objects.get().used_at is None
        assert post(client, RENEW_URL, renewal_body(certificate, key, challenge)).status_code == 201


# Bad inputs: 4xx with a status code and a Japanese message, never a 500 ----------------------


BAD_PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("url", [CHALLENGE_URL, RENEW_URL])
@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        pytest.param("{", "3400", id="malformed-json"),
        pytest.param(b"\xff\xfe{}", "3400", id="not-utf8"),
        pytest.param("[]", "3400", id="json-array"),
        pytest.param('"certificate"', "3400", id="json-string"),
        pytest.param("null", "3400", id="json-null"),
        pytest.param("", "3400", id="empty-body"),
        pytest.param({}, "3400", id="missing-fields"),
        pytest.param({"certificate": 123}, "3400", id="number"),
        pytest.param({"certificate": None}, "3400", id="null"),
        pytest.param({"certificate": ["-----BEGIN CERTIFICATE-----"]}, "3400", id="list"),
        pytest.param({"certificate": {"pem": "x"}}, "3400", id="object"),
        pytest.param({"certificate": True}, "3400", id="boolean"),
    ],
)
def test_api_malformed_requests_are_4xx_with_a_japanese_message(
    client, api_ca, url, body, status_code
):
    assert_error(post(client, url, body), 400, status_code)


@pytest.mark.parametrize("url", [CHALLENGE_URL, RENEW_URL])
@pytest.mark.parametrize(
    "pem",
    [
        pytest.param("", id="empty"),
        pytest.param("hello", id="not-pem"),
        pytest.param(BAD_PEM, id="pem-with-garbage"),
        pytest.param(
            "-----BEGIN CERTIFICATE-----\n証明書\n-----END CERTIFICATE-----\n", id="non-ascii"
        ),
        pytest.param("\x7f" * 10, id="del"),
        pytest.param(make_csr()[1], id="a-csr"),
    ],
)
def test_api_certificate_that_is_not_a_pem_certificate_is_refused(client, old, url, pem):
    key, certificate = old
    with travel(OPENS_AT):
        body = {"certificate": pem}
        if url == RENEW_URL:
            body = renewal_body(
                certificate, key, get_challenge(client, certificate), certificate=pem
            )
        response = post(client, url, body)
    assert_error(response, 409, "3470", "クライアント証明書の形式が正しくありません。")
    assert renewals_of(certificate) == 0


@pytest.mark.parametrize("same_serial", [False, True], ids=["other-serial", "our-serial"])
@pytest.mark.parametrize("url", [CHALLENGE_URL, RENEW_URL])
def test_api_certificate_not_issued_by_us_is_refused(client, old, url, same_serial):
    key, certificate = old
    ours = x509.load_pem_x509_certificate(certificate.pem.encode())
    foreign = foreign_certificate_pem(ours.serial_number if same_serial else None)
    with travel(OPENS_AT):
        body = {"certificate": foreign}
        if url == RENEW_URL:
            body = renewal_body(
                certificate, key, get_challenge(client, certificate), certificate=foreign
            )
        response = post(client, url, body)
    assert_error(
        response, 409, "3470", "このクライアント証明書は企保ネットで発行されたものではありません。"
    )
    assert renewals_of(certificate) == 0


@pytest.mark.parametrize("missing", ["challenge", "signature", "csr"])
def test_api_renewal_needs_every_field_as_a_string(client, old, missing):
    key, certificate = old
    with travel(OPENS_AT):
        body = renewal_body(certificate, key, get_challenge(client, certificate))
        without = {k: v for k, v in body.items() if k != missing}
        with_number = {**body, missing: 42}
        for bad in (without, with_number):
            response = assert_error(post(client, RENEW_URL, bad), 400, "3400")
            assert missing in response["message"]
            assert list(response["errors"]) == [missing]
    assert renewals_of(certificate) == 0
    assert RenewalChallenge.objects.get().used_at is None


@pytest.mark.parametrize("url", [CHALLENGE_URL, RENEW_URL])
def test_api_too_large_body_is_413(client, api_ca, url):
    response = post(client, url, {"certificate": "x" * (70 * 1024)})
    assert_error(response, 413, "3413")


@pytest.mark.parametrize("url", [CHALLENGE_URL, RENEW_URL])
def test_api_only_post_is_allowed(client, url):
    assert client.get(url, secure=True).status_code == 405


@pytest.mark.parametrize("field", ["certificate", "challenge", "signature", "csr"])
def test_api_lone_surrogates_in_json_strings_are_4xx(client, old, field):
    """JSON may carry "\\ud800", which Python cannot encode: refused with the other characters
    no field may hold (400, 3400) before the services see it, never a 500."""
    key, certificate = old
    with travel(OPENS_AT):
        body = renewal_body(certificate, key, get_challenge(client, certificate))
        raw = json.dumps({**body, field: "x"}).replace('"x"', '"\\ud800"')
        assert_error(post(client, RENEW_URL, raw), 400, "3400")
    assert renewals_of(certificate) == 0
