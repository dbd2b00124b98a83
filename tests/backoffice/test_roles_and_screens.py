"""Roles (groups made by a migration), the one screen per customer user, the dashboard, and the
changelists' scale: a constant number of queries, no COUNT(*) of the whole table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from issuance import roles
from issuance.models import InputLock, Notice
from issuance.selectors.dashboard import dashboard
from issuance.services.dashboards import cached_dashboard
from issuance.services.reissue import reissue_notice
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [roles.CLERK, roles.SUPERVISOR])
def test_the_roles_are_groups_with_their_permissions(role):
    group = Group.objects.get(name=role)
    held = {(p.content_type.app_label, p.codename) for p in group.permissions.all()}
    assert held == set(roles.ROLE_PERMISSIONS[role])


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (roles.CLERK, {roles.REISSUE, roles.PRINT, roles.RESEND, roles.LIFT_LOCK}),
        (
            roles.SUPERVISOR,
            {roles.REISSUE, roles.PRINT, roles.RESEND, roles.LIFT_LOCK, roles.REVOKE, roles.EXPORT},
        ),
    ],
)
def test_each_role_may_do_its_actions_only(role, allowed):
    user = make_staff(role, desk("団体保険課"))
    everything = {
        roles.REISSUE,
        roles.PRINT,
        roles.RESEND,
        roles.LIFT_LOCK,
        roles.REVOKE,
        roles.EXPORT,
    }
    assert {p for p in everything if user.has_perm(p)} == allowed
    assert not user.has_perm("issuance.delete_certificate")
    assert not user.has_perm("issuance.change_servicedesk")  # the superuser manages desks


def test_only_the_superuser_manages_desks_staff_and_the_schedule():
    supervisor = staff_client(make_staff(roles.SUPERVISOR))
    for name in (
        "admin:issuance_servicedesk_add",
        "admin:auth_user_changelist",
        "admin:django_celery_beat_periodictask_changelist",
    ):
        assert supervisor.get(reverse(name)).status_code == 403, name


@pytest.fixture
def busy_user():
    user = make_user(make_customer(product_lines=("(新)団体定期保険",), started_using=True))
    make_notice(user, used_at=timezone.now())
    make_certificate(user, days_left=10)  # the renewal window is open
    make_certificate(user, days_left=-5)
    InputLock.objects.create(
        kind="person",
        value=user.customer.kihonet_code,
        user_id=user.user_id,
        locked_until=timezone.now() + timedelta(minutes=30),
    )
    return user


def test_r15_r16_the_users_screen_answers_why_cannot_i_log_in(busy_user):
    clerk = make_staff(roles.CLERK, desk("企業保険サービス課"))
    from issuance import audit

    reissue_notice(user=busy_user, reason="pc_change", actor=audit.Actor.staff_user(clerk))
    client = staff_client(clerk)
    page = client.get(reverse("admin:issuance_kihonetuser_change", args=[busy_user.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for text in (
        "(新)団体定期保険",
        "企業保険サービス課",
        "0120-123-840",
        "0120-563-925",
        "ユーザーIDのお知らせ",
        "再発行完了の通知文書",
        "002",
        "使用済み",
        "未使用",
        "本日更新可能",
        "期限切れ",
        "ロック中",
        "パソコンの変更",
        "再発行",
        "更新案内メール",
    ):
        assert text in html, text
    base = f"/admin/issuance/kihonetuser/{busy_user.pk}/"
    for action in ("reissue/", "print/", "print.pdf", "lift/", "resend/"):
        assert action in html and base in html, action
    assert "kn-danger" not in html  # a clerk has no revoke button


def test_r16_the_users_screen_marks_an_unused_notice_replaced_by_a_reissue():
    from issuance import audit

    user = make_user(make_customer(started_using=True))
    make_notice(user)  # 001, never used
    supervisor = make_staff(roles.SUPERVISOR)
    reissue_notice(user=user, reason="pc_change", actor=audit.Actor.staff_user(supervisor))
    page = staff_client(supervisor).get(
        reverse("admin:issuance_kihonetuser_change", args=[user.pk])
    )
    html = page.content.decode()
    assert html.count("再発行により無効") == 1  # 001; the reissue's 002 is the one to use
    assert html.count('<span class="kn-badge kn-ok">未使用</span>') == 1


def test_the_users_screen_makes_a_constant_number_of_queries(
    busy_user, django_assert_max_num_queries
):
    client = staff_client(make_staff(roles.SUPERVISOR))
    url = reverse("admin:issuance_kihonetuser_change", args=[busy_user.pk])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(10):
        make_certificate(busy_user)
        make_notice(
            busy_user, branch_number=f"{Notice.objects.filter(user=busy_user).count() + 1:03d}"
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_the_dashboard_shows_the_desks_figures_and_36_months(busy_user):
    other = make_user(make_customer(product_lines=("団体信用生命保険",), started_using=True))
    make_certificate(other, days_left=3)
    figures = dashboard(desk("企業保険サービス課"))
    assert (figures.valid, figures.expiring_30, figures.expiring_7) == (1, 1, 0)
    assert figures.locked_notices == 1
    assert len(figures.months) == 37 and sum(bar.count for bar in figures.months) == 1
    everyone = dashboard(None)
    assert (everyone.valid, everyone.expiring_7) == (2, 1)

    page = (
        staff_client(make_staff(roles.CLERK, desk("企業保険サービス課")))
        .get(reverse("admin:index"))
        .content.decode()
    )
    assert "企業保険サービス課の状況" in page and page.count('<g class="kn-col">') == 37
    chart = page.split('<svg class="kn-chart"')[1].split("</svg>")[0]
    assert "<script" not in chart and "style=" not in chart  # no JS, nothing the CSP blocks


def test_r03_many_mismatches_for_a_company_alert_its_desk_on_the_dashboard(busy_user, settings):
    """The company is not locked: its desk sees the alert at once (not from the cached
    figures), other desks do not, supervisors do."""
    from issuance.errors import InputMismatchError
    from issuance.services import enrollment

    settings.KIHONET_INPUT_ALERT_COMPANY_FAILURES = 6
    code = busy_user.customer.kihonet_code
    clerk = staff_client(make_staff(roles.CLERK, desk("企業保険サービス課")))
    assert "kn-mismatch-alerts" not in clerk.get(reverse("admin:index")).content.decode()
    for n in range(6):
        with pytest.raises(InputMismatchError):
            enrollment.start_enrollment(
                enrollment.NoticeFields(
                    code, "ZZ99999999", f"ZZ{n:05d}", "2026", "001", "x@example.jp"
                ),
                ip_address=f"203.0.113.{n + 1}",
            )
    page = clerk.get(reverse("admin:index")).content.decode()
    assert "入力誤りの集中（直近24時間）" in page and code in page
    assert busy_user.customer.name in page and "60分間に6件" in page
    other = staff_client(make_staff(roles.CLERK, desk("団体保険課")))
    assert "kn-mismatch-alerts" not in other.get(reverse("admin:index")).content.decode()
    supervisor = staff_client(make_staff(roles.SUPERVISOR))
    assert code in supervisor.get(reverse("admin:index")).content.decode()


def test_the_refresh_job_computes_every_desks_dashboard_ahead_of_the_staff(
    busy_user, django_assert_num_queries
):
    from issuance.models import ServiceDesk
    from issuance.tasks import refresh_dashboards

    assert refresh_dashboards() == ServiceDesk.objects.count() + 1
    served = desk("企業保険サービス課")
    with django_assert_num_queries(0):
        figures = cached_dashboard(served)
    assert figures.valid == 1


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:issuance_kihonetuser_changelist",
        "admin:issuance_certificate_changelist",
        "admin:issuance_notice_changelist",
        "admin:issuance_auditevent_changelist",
    ],
)
def test_changelists_never_count_the_whole_table(url_name):
    for _ in range(3):
        user = make_user()
        make_notice(user)
        make_certificate(user)
    client = staff_client(make_staff(roles.SUPERVISOR))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(url_name)).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


@pytest.mark.parametrize("key", ["kihonet_code", "user_id", "management_number", "email", "serial"])
def test_a_search_by_each_key_takes_a_constant_number_of_queries(
    key, django_assert_max_num_queries
):
    def add(n):
        made = []
        for _ in range(n):
            user = make_user(
                make_customer(product_lines=("総合医療保険(団体型)",), started_using=True)
            )
            made.append((user, make_certificate(user)))
        return made

    client = staff_client(make_staff(roles.CLERK, desk("福岡法人サービス課")))
    url = reverse("admin:issuance_kihonetuser_changelist")

    def term(user, certificate):
        return {
            "kihonet_code": user.customer.kihonet_code,
            "user_id": user.user_id,
            "management_number": user.management_number,
            "email": user.email,
            "serial": certificate.serial,
        }[key]

    first = add(2)
    with CaptureQueriesContext(connection) as few:
        found = client.get(url, {"q": term(*first[0])}).context["cl"].result_list
    assert [u.pk for u in found] == [first[0][0].pk]
    more = add(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        found = client.get(url, {"q": term(*more[-1])}).context["cl"].result_list
    assert [u.pk for u in found] == [more[-1][0].pk]


def test_r03_the_mismatch_alerts_list_is_scoped_to_the_desk(busy_user):
    from issuance.models import MismatchAlert

    MismatchAlert.objects.create(
        kihonet_code=busy_user.customer.kihonet_code, failures=50, window_seconds=3600
    )
    MismatchAlert.objects.create(kihonet_code="99999999", failures=50, window_seconds=3600)
    url = reverse("admin:issuance_mismatchalert_changelist")
    clerk = staff_client(make_staff(roles.CLERK, desk("企業保険サービス課")))
    page = clerk.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert busy_user.customer.kihonet_code in html and "99999999" not in html
    assert "99999999" in staff_client(make_staff(roles.SUPERVISOR)).get(url).content.decode()
