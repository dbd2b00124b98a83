"""Where staff land after signing in: the page they asked for when it is ours, otherwise the
dashboard (an unsafe ``next`` led to /accounts/profile/, a 404)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from issuance import roles
from tests.backoffice.helpers import PASSWORD, current_code, desk, make_staff

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")


def sign_in(user, next_url: str | None):
    client = Client()
    data = {"username": user.username, "password": PASSWORD, "otp_token": current_code(user)}
    if next_url is not None:
        data["next"] = next_url
    return client, client.post(LOGIN, data)


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/admin/",
        "//evil.example/",
        "http:///evil.example",
        "javascript:alert(1)",
        "",
        None,
    ],
)
def test_an_unsafe_or_missing_next_leads_to_the_dashboard(next_url):
    staff = make_staff(roles.CLERK, desk("団体保険課"))
    client, response = sign_in(staff, next_url)
    assert response.status_code == 302
    assert response["Location"] == INDEX
    assert client.get(response["Location"]).status_code == 200


def test_a_safe_next_is_followed():
    staff = make_staff(roles.CLERK, desk("団体保険課"))
    target = reverse("admin:issuance_certificate_changelist")
    _client, response = sign_in(staff, target)
    assert response.status_code == 302 and response["Location"] == target
