"""GET /api/v1/certificates/{serial}/status: what the client tool's ``list`` shows per certificate.

Valid, renewed, revoked or expired; nothing about the person; bad serials are a Japanese 400,
unknown ones a 404 (3495), never a 5xx.
"""

from __future__ import annotations

import pytest

from issuance import ca
from issuance.services import certificates
from tests.issuance.services.test_renewal import (
    ACTOR,
    NOT_AFTER,
    OPENS_AT,
    SECOND,
    create_ca,
    issue_old,
    renew_with,
    travel,
)
from tests.issuance.test_renewal_api import JAPANESE

pytestmark = pytest.mark.django_db


@pytest.fixture
def status_ca(settings, tmp_path):
    yield create_ca(settings, tmp_path)
    ca.reset()


def status_of(client, serial: str):
    return client.get(f"/api/v1/certificates/{serial}/status", secure=True)


def test_a_valid_certificate(client, status_ca):
    _, certificate = issue_old()
    with travel(OPENS_AT):
        response = status_of(client, certificate.serial)
    assert response.status_code == 200
    assert response.json() == {"serial": certificate.serial, "status": "valid"}


def test_r12_a_renewed_certificate_and_its_successor(client, status_ca):
    key, certificate = issue_old()
    with travel(OPENS_AT + SECOND):
        renewed = renew_with(certificate, key)
        assert status_of(client, certificate.serial).json()["status"] == "renewed"
        assert status_of(client, renewed.serial).json()["status"] == "valid"


def test_a_revoked_certificate(client, status_ca):
    _, certificate = issue_old()
    with travel(OPENS_AT):
        certificates.revoke_certificate(certificate, reason="keyCompromise", actor=ACTOR)
        assert status_of(client, certificate.serial).json()["status"] == "revoked"


def test_r08_an_expired_certificate(client, status_ca):
    _, certificate = issue_old()
    with travel(NOT_AFTER + SECOND):
        assert status_of(client, certificate.serial).json()["status"] == "expired"
    with travel(NOT_AFTER - SECOND):
        assert status_of(client, certificate.serial).json()["status"] == "valid"


def test_an_unknown_serial_is_404_in_japanese(client, status_ca):
    response = status_of(client, "ABCDEF0123456789")
    assert response.status_code == 404
    assert response.json()["status_code"] == "3495"
    assert JAPANESE.search(response.json()["message"])


@pytest.mark.parametrize("serial", ["abc", "XYZ", "A" * 41, "A/B", "%E3%81%82"])
def test_a_bad_serial_is_a_japanese_400(client, status_ca, serial: str):
    response = status_of(client, serial)
    assert response.status_code == 400
    assert response.json()["status_code"] == "3400"
    assert response.json()["message"] == "シリアル番号の形式が正しくありません。"


@pytest.mark.parametrize("serial", ["%00", "A%0A"])
def test_a_control_character_in_the_serial_is_refused_before_the_view(client, status_ca, serial):
    """The bad-input middleware answers first, in the API's JSON form."""
    response = status_of(client, serial)
    assert response.status_code == 400
    assert response.json()["status_code"] == "3400"
    assert JAPANESE.search(response.json()["message"])


def test_only_get_is_allowed(client, status_ca):
    _, certificate = issue_old()
    url = f"/api/v1/certificates/{certificate.serial}/status"
    assert client.post(url, {}, secure=True).status_code == 405
