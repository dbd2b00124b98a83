"""R12: the status the client tool lists for each certificate it holds, from the server."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from issuance import audit
from issuance.pki.profile import add_years
from issuance.services.certificates import issue_certificate, revoke_certificate
from tests.csr import make_csr
from tests.factories import make_user

pytestmark = pytest.mark.django_db

ACTOR = audit.Actor.system("test")


def issued(user, *, now=None, renewed_from=None):
    _, csr = make_csr()
    certificate = issue_certificate(user=user, csr_data=csr, actor=ACTOR, now=now)
    if renewed_from is not None:
        certificate.renewed_from = renewed_from
        certificate.save(update_fields=["renewed_from"])
    return certificate


def status_of(client, serial: str):
    return client.get(reverse("api-certificate-status", args=[serial]))


def test_r12_status_valid_renewed_revoked_expired(client, issuing_ca):
    user = make_user()
    three_years_ago = add_years(timezone.now(), -3)
    old = issued(user, now=three_years_ago + timedelta(days=10))
    new = issued(user, renewed_from=old)
    expired = issued(user, now=three_years_ago - timedelta(days=1))
    revoked = issued(user)
    revoke_certificate(revoked, reason="keyCompromise", actor=ACTOR)

    for certificate, status in (
        (new, "valid"),
        (old, "renewed"),
        (expired, "expired"),
        (revoked, "revoked"),
    ):
        response = status_of(client, certificate.serial.lower())
        assert response.status_code == 200
        assert response.json() == {"serial": certificate.serial, "status": status}


def test_r12_unknown_serial_is_a_json_404(client, issuing_ca):
    for serial in ("ABC123", "not a serial", "%0A"):
        response = status_of(client, serial)
        assert response.status_code == 404
        assert response.json()["status_code"] == "3452"
        assert response.json()["message"] == "指定された証明書は見つかりません。"
    assert client.post(reverse("api-certificate-status", args=["ABC"])).status_code == 405
