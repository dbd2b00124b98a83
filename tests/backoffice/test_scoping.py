"""R15: a desk's staff see and act on the customers of the desk's product lines (the contact
table), the 導入サポートセンター the customers before their first certificate, a supervisor all:
in lists, search, autocomplete, object URLs (404), actions and exports."""

from __future__ import annotations

import pytest
from django.urls import reverse

from issuance import roles
from issuance.models import Certificate, Notice
from tests.backoffice.conftest import all_desk_names, make_certificate
from tests.backoffice.helpers import make_staff, staff_client

pytestmark = pytest.mark.django_db

DESKS = all_desk_names()


def listed_user_ids(client, **params) -> set[str]:
    response = client.get(reverse("admin:issuance_kihonetuser_changelist"), params)
    assert response.status_code == 200
    return {user.user_id for user in response.context["cl"].result_list}


def test_r15_every_desk_of_the_contact_table_exists(desks):
    assert set(DESKS) == set(desks)


@pytest.mark.parametrize("desk_name", DESKS)
def test_r15_a_clerk_lists_only_the_customers_of_the_desk(population, desks, desk_name):
    client = staff_client(make_staff(roles.CLERK, desks[desk_name]))
    expected = population.visible_to(desk_name)
    assert expected, "each desk serves at least one customer of the population"
    assert listed_user_ids(client) == expected
    certificates = client.get(reverse("admin:issuance_certificate_changelist")).context["cl"]
    assert {c.user.user_id for c in certificates.result_list} <= expected
    notices = client.get(reverse("admin:issuance_notice_changelist")).context["cl"]
    assert {n.user.user_id for n in notices.result_list} == expected


@pytest.mark.parametrize("desk_name", DESKS)
def test_r15_search_finds_nothing_of_another_desk(population, desks, desk_name):
    client = staff_client(make_staff(roles.CLERK, desks[desk_name]))
    expected = population.visible_to(desk_name)
    for user in population.users:
        keys = [user.user_id, user.management_number, user.email, user.customer.kihonet_code]
        for key in keys:
            found = listed_user_ids(client, q=key)
            assert found == ({user.user_id} if user.user_id in expected else set()), key


@pytest.mark.parametrize("desk_name", DESKS)
def test_r15_typing_the_url_of_another_desks_object_gives_404(population, desks, desk_name):
    client = staff_client(make_staff(roles.CLERK, desks[desk_name]))
    expected = population.visible_to(desk_name)
    for user in population.users:
        mine = user.user_id in expected
        notice = Notice.objects.filter(user=user).first()
        urls = [
            reverse("admin:issuance_kihonetuser_change", args=[user.pk]),
            reverse("admin:issuance_notice_change", args=[notice.pk]),
            reverse("admin:issuance_customer_change", args=[user.customer_id]),
            reverse("admin:issuance_kihonetuser_reissue", args=[user.pk]),
            reverse("admin:issuance_kihonetuser_print", args=[user.pk, notice.pk]),
        ]
        certificate = Certificate.objects.filter(user=user).first()
        if certificate:
            urls.append(reverse("admin:issuance_certificate_change", args=[certificate.pk]))
            urls.append(
                reverse("admin:issuance_kihonetuser_resend", args=[user.pk, certificate.pk])
            )
        for url in urls:
            assert client.get(url).status_code == (200 if mine else 404), url
        # 「履歴」 leads to the user's audit trail, never to another desk's
        history = client.get(reverse("admin:issuance_kihonetuser_history", args=[user.pk]))
        assert history.status_code == (302 if mine else 404)


@pytest.mark.parametrize("desk_name", DESKS)
def test_r15_actions_on_another_desks_customer_are_404(population, desks, desk_name):
    client = staff_client(make_staff(roles.CLERK, desks[desk_name]))
    expected = population.visible_to(desk_name)
    for user in population.users:
        if user.user_id in expected:
            continue
        response = client.post(
            reverse("admin:issuance_kihonetuser_reissue", args=[user.pk]), {"reason": "pc_change"}
        )
        assert response.status_code == 404
        assert not Notice.objects.filter(user=user, kind="reissue").exists()


@pytest.mark.parametrize("desk_name", DESKS)
def test_r15_autocomplete_offers_only_the_desks_users(population, desks, desk_name):
    client = staff_client(make_staff(roles.CLERK, desks[desk_name]))
    expected = population.visible_to(desk_name)
    for user in population.users:
        response = client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": "issuance",
                "model_name": "notice",
                "field_name": "user",
                "term": user.user_id,
            },
        )
        assert response.status_code == 200
        ids = {row["id"] for row in response.json()["results"]}
        assert ids == ({str(user.pk)} if user.user_id in expected else set())


def test_r15_the_onboarding_desk_loses_a_customer_once_it_starts_using(population, desks):
    client = staff_client(make_staff(roles.CLERK, desks["企保ネット導入サポートセンター"]))
    user = population.not_started
    assert listed_user_ids(client) == {user.user_id}
    user.customer.started_using = True
    user.customer.save()
    assert listed_user_ids(client) == set()
    sales = staff_client(make_staff(roles.CLERK, desks["団体保険課"]))
    assert user.user_id in listed_user_ids(sales)  # 総合福祉団体定期保険 → 団体保険課


def test_r15_a_supervisor_sees_every_customer(population):
    client = staff_client(make_staff(roles.SUPERVISOR))
    assert listed_user_ids(client) == {u.user_id for u in population.users}


def test_r15_staff_without_a_desk_or_role_see_nothing(population):
    for user in (make_staff(roles.CLERK), make_staff(None)):
        client = staff_client(user)
        response = client.get(reverse("admin:issuance_kihonetuser_changelist"))
        assert response.status_code in {200, 403}
        if response.status_code == 200:
            assert list(response.context["cl"].result_list) == []
        target = population.users[0]
        assert client.get(
            reverse("admin:issuance_kihonetuser_change", args=[target.pk])
        ).status_code in {403, 404}


def test_r15_an_export_holds_only_the_desks_rows(population, desks):
    """Even a clerk who was given the export permission exports only the desk's customers."""
    from django.contrib.auth.models import Permission

    clerk = make_staff(roles.CLERK, desks["名古屋法人サービス課"])
    clerk.user_permissions.add(Permission.objects.get(codename="export_data"))
    client = staff_client(clerk)
    every_pk = [u.pk for u in population.users]
    response = client.post(
        reverse("admin:issuance_kihonetuser_changelist"),
        {
            "action": "export_csv",
            "_selected_action": every_pk,
            "select_across": "1",
        },
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    exported = {line.split(",")[0] for line in body.strip().splitlines()[1:]}
    assert exported == population.visible_to("名古屋法人サービス課")


def test_r15_clerks_have_no_export_action_and_supervisors_do(population, desks):
    clerk = staff_client(make_staff(roles.CLERK, desks["団体保険課"]))
    supervisor = staff_client(make_staff(roles.SUPERVISOR))
    url = reverse("admin:issuance_kihonetuser_changelist")
    assert "export_csv" not in clerk.get(url).content.decode()
    assert "export_csv" in supervisor.get(url).content.decode()


def test_r15_a_certificate_of_another_desk_cannot_be_found_by_serial(population, desks):
    client = staff_client(make_staff(roles.CLERK, desks["福岡法人サービス課"]))
    foreign = population.by_line["団体信用生命保険"]
    certificate = make_certificate(foreign)
    url = reverse("admin:issuance_certificate_changelist")
    assert list(client.get(url, {"q": certificate.serial}).context["cl"].result_list) == []
    own = population.by_line["総合医療保険(団体型)"]
    mine = make_certificate(own)
    found = client.get(url, {"q": mine.serial}).context["cl"].result_list
    assert [c.serial for c in found] == [mine.serial]
