"""The admin skeleton: every model registered, searchable, and no N+1 in changelists."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from issuance.models import AuditEvent, Certificate, Notice
from tests.factories import make_notice, make_user

pytestmark = pytest.mark.django_db


def add_certificates(count: int, start: int) -> None:
    now = timezone.now()
    for n in range(start, start + count):
        user = make_user()
        make_notice(user)
        Certificate.objects.create(
            user=user,
            serial=f"{n:X}",
            subject=f"CN={user.user_id}",
            email=user.email,
            not_before=now,
            not_after=now + timedelta(days=1095),
            pem="-",
            fingerprint=f"{n:064x}",
            public_key_fingerprint=f"{n + 10**6:064x}",
        )


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:issuance_certificate_changelist",
        "admin:issuance_notice_changelist",
        "admin:issuance_kihonetuser_changelist",
        "admin:issuance_auditevent_changelist",
    ],
)
def test_changelists_make_no_query_per_row(admin_client, django_assert_max_num_queries, url_name):
    add_certificates(3, 1)
    response = admin_client.get(reverse(url_name))
    assert response.status_code == 200
    with django_assert_max_num_queries(12) as few:
        admin_client.get(reverse(url_name))
    add_certificates(20, 100)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(reverse(url_name))


def test_search_finds_a_certificate_by_serial_and_user_id(admin_client):
    add_certificates(2, 1)
    url = reverse("admin:issuance_certificate_changelist")
    found = admin_client.get(url, {"q": "2"}).context["cl"]
    assert [c.serial for c in found.result_list] == ["2"]
    user_id = Certificate.objects.get(serial="1").user.user_id
    found = admin_client.get(url, {"q": user_id}).context["cl"]
    assert [c.serial for c in found.result_list] == ["1"]


def test_nobody_deletes_certificates_notices_or_audit_events(admin_user, rf):
    request = rf.get("/")
    request.user = admin_user
    for model in (Certificate, Notice, AuditEvent):
        assert admin.site._registry[model].has_delete_permission(request) is False


def test_every_model_is_registered_with_japanese_names():
    from django.apps import apps

    for model in apps.get_app_config("issuance").get_models():
        assert model in admin.site._registry, model
        assert not str(model._meta.verbose_name).isascii(), model


def test_a_superusers_edit_of_a_customer_and_a_user_is_audited(admin_client, admin_user):
    """Every change in the back office leaves an audit event, edits in the forms included:
    which fields changed, never their values."""
    from tests.factories import make_customer

    customer = make_customer(name="監査前株式会社")
    url = reverse("admin:issuance_customer_change", args=[customer.pk])
    response = admin_client.post(
        url,
        {
            "kihonet_code": customer.kihonet_code,
            "name": "監査後株式会社",
            "product_lines": list(customer.product_lines.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert customer.name == "監査後株式会社"
    event = AuditEvent.objects.get(
        action="record_changed", object_type="customer", object_id=str(customer.pk)
    )
    assert (event.object_type, event.staff, event.actor_type) == ("customer", admin_user, "staff")
    assert event.detail == {"model": "customer", "fields": ["name"]}
    assert "監査後株式会社" not in str(event.detail)

    user = make_user(customer)
    response = admin_client.post(
        reverse("admin:issuance_kihonetuser_change", args=[user.pk]),
        {
            "customer": customer.pk,
            "user_id": user.user_id,
            "management_number": user.management_number,
            "email": "changed@example.jp",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(
        action="record_changed", object_type="kihonetuser", object_id=str(user.pk)
    )
    assert event.kihonet_user == user
    assert event.detail["fields"] == ["email"]


def test_a_csv_export_is_audited_by_its_service(admin_client):
    from tests.factories import make_customer

    customer = make_customer()
    response = admin_client.post(
        reverse("admin:issuance_customer_changelist"),
        {"action": "export_csv", "index": "0", "_selected_action": [customer.pk]},
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = AuditEvent.objects.get(action="data_exported")
    assert event.detail == {"model": "customer", "rows": 1}


def add_certificate_in_each_state() -> dict[str, Certificate]:
    """A valid, an expired and a revoked certificate (revoked after its expiry: still 失効)."""
    now = timezone.now()
    user = make_user()
    states = {
        "valid": {"not_after": now + timedelta(days=10)},
        "expired": {"not_after": now - timedelta(days=1)},
        "revoked": {
            "not_after": now - timedelta(days=2),
            "revoked_at": now - timedelta(hours=1),
            "revocation_reason": "keyCompromise",
        },
    }
    return {
        state: Certificate.objects.create(
            user=user,
            serial=f"{n:X}",
            subject=f"CN={user.user_id}",
            email=user.email,
            not_before=now - timedelta(days=1095),
            pem="-",
            fingerprint=f"{n:064x}",
            public_key_fingerprint=f"{n + 10**6:064x}",
            **fields,
        )
        for n, (state, fields) in enumerate(states.items(), start=500)
    }


def test_r08_the_certificate_list_has_one_status_filter_and_column_from_the_dates(admin_client):
    made = add_certificate_in_each_state()
    url = reverse("admin:issuance_certificate_changelist")
    response = admin_client.get(url)
    filters = {
        str(spec.title): [str(choice["display"]) for choice in spec.choices(response.context["cl"])]
        for spec in response.context["cl"].filter_specs
    }
    assert filters == {
        "状態": ["全て", "有効", "失効", "期限切れ"],
        "有効期限": ["全て", "7日以内に期限切れ", "30日以内に期限切れ"],
    }
    html = response.content.decode()
    for label in ("有効", "失効", "期限切れ"):
        assert html.count(f'<td class="field-status">{label}</td>') == 1, label
    for state, certificate in made.items():
        listed = admin_client.get(url, {"status": state}).context["cl"].result_list
        assert list(listed) == [certificate], state
    assert len(admin_client.get(url, {"status": "zz"}).context["cl"].result_list) == 3


def test_r08_the_certificate_page_and_export_show_the_derived_status(admin_client):
    made = add_certificate_in_each_state()
    page = admin_client.get(
        reverse("admin:issuance_certificate_change", args=[made["expired"].pk])
    ).content.decode()
    assert "<label>状態:</label>" in page and '<div class="readonly">期限切れ</div>' in page
    response = admin_client.post(
        reverse("admin:issuance_certificate_changelist"),
        {
            "action": "export_csv",
            "index": "0",
            "_selected_action": [c.pk for c in made.values()],
        },
    )
    rows = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert rows[0].split(",")[:3] == ["シリアル番号", "ユーザーID", "状態"]
    status_by_serial = {row.split(",")[0]: row.split(",")[2] for row in rows[1:]}
    assert status_by_serial == {c.serial: state for state, c in made.items()}
