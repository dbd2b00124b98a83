"""Bad input from outside is refused with a 400 in Japanese, never a 500.

A NUL byte or another control character in a path, query string, form body or cookie is
refused before any view or the database (issuance.middleware); JSON nested a thousand levels
deep, or carrying such characters, gets the API's JSON error from every endpoint.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from issuance import roles
from issuance.middleware import bad_input_message
from tests.backoffice.helpers import make_staff, staff_client
from tests.factories import make_notice

pytestmark = pytest.mark.django_db

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
API_ENDPOINTS = [
    "/api/v1/enrollments",
    "/api/v1/enrollments/some-token/confirm",
    "/api/v1/enrollments/some-token/certificate",
    "/api/v1/renewals/challenge",
    "/api/v1/renewals",
]
DEEP_JSON = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"


def api_error(response) -> dict:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == "3400" and JAPANESE.search(body["message"]), body
    return body


def refused_page(response) -> str:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert bad_input_message() in page
    return page


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


@pytest.fixture
def clerk(db):
    return staff_client(make_staff(roles.CLERK))


@pytest.mark.parametrize("url", API_ENDPOINTS)
@pytest.mark.parametrize(
    "body", [DEEP_JSON, "[" * 1000 + "]" * 1000, '{"a": ' + '{"b": ' * 900 + "1" + "}" * 901]
)
def test_deeply_nested_json_is_refused_by_every_api_endpoint(client, url, body):
    response = client.post(url, data=body, content_type="application/json")
    assert "入れ子が深すぎます" in api_error(response)["message"]


@pytest.mark.parametrize("url", API_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        '{"kihonet_code": "1234\\u00005678", "csr": "x", "certificate": "x"}',
        '{"csr": "\\ud800", "certificate": "\\udfff", "challenge": "x", "signature": "x"}',
        '{"\\u0000": "x"}',
    ],
)
def test_json_strings_with_nul_or_lone_surrogates_are_refused(client, url, body):
    response = client.post(url, data=body, content_type="application/json")
    assert api_error(response)["message"] == bad_input_message()


def test_nul_in_the_api_path_gets_the_json_error(client):
    api_error(client.post("/api/v1/enrollments/ab%00cd/confirm", content_type="application/json"))


def test_nul_in_the_renewal_completion_serial_is_refused(client):
    refused_page(client.get(reverse("issuance:renew-complete"), {"serial": "AB\x00CD"}))


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f\x00"])
def test_control_characters_in_a_query_string_are_refused_on_public_pages(client, character):
    refused_page(client.get(reverse("issuance:home"), {"x": f"a{character}b"}))
    refused_page(client.get(reverse("issuance:home"), {f"k{character}": "v"}))


def test_tab_and_newlines_stay_allowed(client):
    assert client.get(reverse("issuance:home"), {"x": "a\tb\r\nc"}).status_code == 200


def test_nul_in_a_form_body_is_refused(client):
    notice = make_notice()
    response = client.post(
        reverse("issuance:enroll"),
        {
            "kihonet_code": notice.user.customer.kihonet_code,
            "management_number": notice.user.management_number,
            "user_id": notice.user.user_id + "\x00",
            "year": str(notice.registration_year),
            "branch_number": notice.branch_number,
            "email": notice.email,
        },
    )
    refused_page(response)


def test_nul_in_a_multipart_form_body_is_refused_and_the_api_still_reads_its_body(client):
    refused_page(client.post(reverse("issuance:enroll"), {"user_id": "a\x00"}))  # multipart
    response = client.post("/api/v1/enrollments", {"user_id": "abc"})  # multipart, no NUL
    assert response.status_code == 400 and response.json()["status_code"] == "3400"


def test_nul_in_a_cookie_is_refused(client):
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    refused_page(client.get(reverse("issuance:home")))


def test_nul_in_the_path_is_refused(client, clerk):
    refused_page(client.get("/enroll/%00/"))
    refused_page(clerk.get("/admin/issuance/certificate/%00/change/"))


def test_nul_in_the_admin_autocomplete_term_is_refused(clerk):
    clerk.raise_request_exception = False
    response = clerk.get(
        reverse("admin:autocomplete"),
        {"app_label": "issuance", "model_name": "notice", "field_name": "user", "term": "a\x00"},
    )
    refused_page(response)


@pytest.mark.parametrize(
    "query",
    [{"status": "\x00"}, {"status__exact": "\x00"}, {"q": "1234\x005678"}, {"expiry": "7\x00"}],
)
def test_nul_in_a_changelist_filter_or_search_is_refused(clerk, query):
    clerk.raise_request_exception = False
    refused_page(clerk.get(reverse("admin:issuance_certificate_changelist"), query))


def test_nul_in_the_staff_sign_in_form_is_refused(client):
    refused_page(
        client.post(
            reverse("admin:login"), {"username": "clerk\x00", "password": "x", "otp_token": "1"}
        )
    )


@pytest.mark.parametrize("form", ["der", "pem"])
def test_the_crl_before_any_ca_exists_is_unavailable_not_a_server_error(
    client, settings, tmp_path, form
):
    from issuance import ca

    settings.KIHONET_CA_DIR = tmp_path / "no-ca"
    settings.KIHONET_CA_PASSPHRASE = "x"
    ca.reset()
    try:
        response = client.get(reverse("issuance:crl", kwargs={"form": form}))
    finally:
        ca.reset()
    assert response.status_code == 503
