"""An issuing request sent again after its answer was lost gets the same certificate (R07, R12).

The client tool cannot tell a request that never arrived from one whose answer was lost; it
sends the same request again. The same token (or used renewal challenge) with a CSR of the same
public key gets the first certificate again, never a second one; another key is refused (3452).
The real server with dropped connections and ``kill -9`` is in tests/production/test_lost_answers.py.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from issuance.errors import IssuedForAnotherKeyError
from issuance.models import AuditEvent, Certificate
from issuance.services import enrollment, renewal
from issuance.services.certificates import revoke_certificate
from tests.csr import make_csr
from tests.factories import make_notice
from tests.issuance.services.test_enrollment import run_together, start
from tests.issuance.services.test_renewal import ACTOR, sign

pytestmark = pytest.mark.django_db


def post(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def confirmed_token(notice) -> str:
    token = start(notice)
    enrollment.confirm_email(token, ip_address=None)
    return token


def certificate_url(token: str) -> str:
    return f"/api/v1/enrollments/{token}/certificate"


def test_r07_the_same_request_again_gets_the_same_answer_and_no_second_certificate(
    client, issuing_ca
):
    notice = make_notice()
    token = confirmed_token(notice)
    body = {"csr": make_csr()[1]}
    first = post(client, certificate_url(token), body)
    assert first.status_code == 201, first.json()
    again = [post(client, certificate_url(token), body) for _ in range(2)]
    assert [(r.status_code, r.json()) for r in again] == [(201, first.json())] * 2
    assert Certificate.objects.filter(notice=notice).count() == 1
    certificate = Certificate.objects.get(notice=notice)
    assert certificate.serial == first.json()["serial"]
    replays = AuditEvent.objects.filter(action="certificate_replayed")
    assert [(e.object_id, e.detail, e.kihonet_user_id) for e in replays] == [
        (str(certificate.pk), {"serial": certificate.serial}, notice.user_id)
    ] * 2
    assert AuditEvent.objects.filter(action="certificate_issued").count() == 1


def test_r07_r15_the_same_token_with_another_key_is_refused_with_3452_and_the_desks(
    client, issuing_ca
):
    notice = make_notice()
    token = confirmed_token(notice)
    assert post(client, certificate_url(token), {"csr": make_csr()[1]}).status_code == 201
    refused = post(client, certificate_url(token), {"csr": make_csr()[1]})
    assert refused.status_code == 409
    body = refused.json()
    assert body["status_code"] == "3452"
    assert body["message"] == str(IssuedForAnotherKeyError.message)
    assert "desks" in body
    # A broken CSR is still a broken CSR (3460), not a replay.
    assert post(client, certificate_url(token), {"csr": "x"}).json()["status_code"] == "3460"
    assert Certificate.objects.filter(notice=notice).count() == 1
    assert not AuditEvent.objects.filter(action="certificate_replayed").exists()


@pytest.mark.parametrize("how", ["replay time over", "revoked"])
def test_r07_no_replay_after_the_replay_time_or_of_a_revoked_certificate(
    client, issuing_ca, settings, how
):
    settings.KIHONET_ISSUE_REPLAY_HOURS = 24
    notice = make_notice()
    token = confirmed_token(notice)
    body = {"csr": make_csr()[1]}
    assert post(client, certificate_url(token), body).status_code == 201
    certificate = Certificate.objects.get(notice=notice)
    if how == "revoked":
        revoke_certificate(certificate, reason="keyCompromise", actor=ACTOR)
    else:
        Certificate.objects.filter(pk=certificate.pk).update(
            created_at=timezone.now() - timedelta(hours=24)
        )
    assert post(client, certificate_url(token), body).json()["status_code"] == "3450"
    assert Certificate.objects.filter(notice=notice).count() == 1


def test_r07_the_replay_lasts_longer_than_the_token(client, issuing_ca, settings):
    """The token's own 15 minutes do not end the replay: a tool that resumes later still
    gets its certificate."""
    notice = make_notice()
    token = confirmed_token(notice)
    body = {"csr": make_csr()[1]}
    first = post(client, certificate_url(token), body)
    notice.enrollments.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = post(client, certificate_url(token), body)
    assert (again.status_code, again.json()) == (201, first.json())


# --- Two identical requests at once (PostgreSQL row locks) -------------------------------------


ROUNDS = 5


@pytest.mark.django_db(transaction=True)
def test_r07_two_identical_acquisitions_at_once_give_one_certificate_to_both(postgres, issuing_ca):
    for _ in range(ROUNDS):
        notice = make_notice()
        token = confirmed_token(notice)
        csr = make_csr()[1]
        results = run_together(
            *[
                lambda token=token, csr=csr: enrollment.complete_enrollment(
                    token, csr, ip_address=None
                )
            ]
            * 3
        )
        assert all(isinstance(r, Certificate) for r in results), results
        assert len({r.pk for r in results}) == 1
        assert Certificate.objects.filter(notice=notice).count() == 1
        assert (
            AuditEvent.objects.filter(
                action="certificate_replayed", object_id=str(results[0].pk)
            ).count()
            == len(results) - 1
        )


@pytest.mark.django_db(transaction=True)
def test_r12_two_identical_renewals_at_once_give_one_renewed_certificate_to_both(
    postgres, issuing_ca
):
    from issuance.services import certificates
    from tests.issuance.services.test_renewal import make_holder

    user = make_holder()
    for _ in range(ROUNDS):
        key, csr = make_csr()
        old = certificates.issue_certificate(
            user=user, csr_data=csr, actor=ACTOR, now=timezone.now() - timedelta(days=3 * 365 - 10)
        )
        _issued, challenge = renewal.create_challenge(old.pem)
        request = {
            "certificate_pem": old.pem,
            "challenge": challenge,
            "signature": sign(key, challenge),
            "csr_data": make_csr()[1],
            "ip_address": "127.0.0.1",
        }
        results = run_together(*[lambda request=request: renewal.renew(**request)] * 3)
        assert all(isinstance(r, Certificate) for r in results), results
        assert len({r.pk for r in results}) == 1
        assert Certificate.objects.filter(renewed_from=old).count() == 1
        assert (
            AuditEvent.objects.filter(
                action="certificate_replayed", object_id=str(results[0].pk)
            ).count()
            == len(results) - 1
        )


@pytest.mark.parametrize("revokes_old", [False, True])
def test_r12_a_renewal_sent_again_needs_the_old_keys_signature(issuing_ca, settings, revokes_old):
    """A replay proves possession again: the used challenge signed by another key is refused.
    It works as well when the renewal revoked the old certificate."""
    settings.KIHONET_RENEWAL_REVOKES_OLD = revokes_old
    from issuance.errors import ProofOfPossessionError
    from issuance.services import certificates
    from tests.issuance.services.test_renewal import make_holder

    key, csr = make_csr()
    old = certificates.issue_certificate(
        user=make_holder(),
        csr_data=csr,
        actor=ACTOR,
        now=timezone.now() - timedelta(days=3 * 365 - 10),
    )
    _issued, challenge = renewal.create_challenge(old.pem)
    new_csr = make_csr()[1]
    request = {"certificate_pem": old.pem, "challenge": challenge, "csr_data": new_csr}
    renewed = renewal.renew(**request, signature=sign(key, challenge), ip_address=None)
    with pytest.raises(ProofOfPossessionError):
        renewal.renew(**request, signature=sign(make_csr()[0], challenge), ip_address=None)
    assert renewal.renew(**request, signature=sign(key, challenge), ip_address=None) == renewed


def test_the_openapi_document_tells_the_client_to_send_the_same_request_again(client):
    document = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/enrollments/{token}/certificate", "/api/v1/renewals"):
        description = document["paths"][path]["post"]["description"]
        assert "同じ要求" in description and "3452" in description
    assert "3452" in document["components"]["schemas"]["Error"]["properties"]["status_code"]["enum"]
