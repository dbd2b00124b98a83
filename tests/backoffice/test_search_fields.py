"""Every admin's search resolves (searching reissue records by e-mail was a 500)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from issuance import audit, roles
from issuance.checks import check_admin_search_fields
from issuance.models import ReissueRecord
from issuance.services.reissue import reissue_notice
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.factories import make_customer, make_notice, make_user

LINE = "総合福祉団体定期保険"  # 団体保険課


def test_every_registered_admins_search_fields_resolve():
    assert check_admin_search_fields() == []
    call_command("check", "--fail-level", "ERROR")  # the check runs with the others


def test_the_check_names_an_admin_whose_search_path_does_not_exist():
    site = admin.AdminSite(name="probe")
    site.register(
        ReissueRecord,
        type("BadAdmin", (admin.ModelAdmin,), {"search_fields": ["email", "=user__user_id"]}),
    )
    errors = check_admin_search_fields(sites=[site])
    assert [error.id for error in errors] == ["issuance.E001"]
    assert "'email'" in errors[0].msg


def test_a_lookup_at_the_end_of_a_search_path_is_accepted():
    site = admin.AdminSite(name="probe")
    site.register(
        ReissueRecord,
        type("LookupAdmin", (admin.ModelAdmin,), {"search_fields": ["user__email__iexact"]}),
    )
    assert check_admin_search_fields(sites=[site]) == []


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.CLERK, roles.SUPERVISOR])
def test_r16_reissue_records_are_found_by_the_users_email(role):
    user = make_user(make_customer(product_lines=(LINE,), started_using=True))
    make_notice(user, used_at="2026-04-02T10:00:00+09:00")
    other = make_user(make_customer(product_lines=(LINE,), started_using=True))
    make_notice(other, used_at="2026-04-02T10:00:00+09:00")
    staff = make_staff(role, desk("団体保険課"))
    actor = audit.Actor.staff_user(staff, "192.0.2.10")
    record = reissue_notice(user=user, reason="pc_change", actor=actor)
    reissue_notice(user=other, reason="pc_change", actor=actor)
    client: Client = staff_client(staff)
    client.raise_request_exception = False
    url = reverse("admin:issuance_reissuerecord_changelist")
    response = client.get(url, {"q": user.email.upper()})
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [record.pk]
