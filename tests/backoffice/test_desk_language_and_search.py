"""The back office as staff read it all day: Japanese names for every stored code, details in
words, Japan time, help texts without rule IDs, a Japanese 403; the search as staff type it
(parts, prefixes, case, full-width, company names) on the pg_trgm indexes; actions that match
the certificate's state (R09, R10, R16)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from issuance import audit, labels, roles
from issuance.models import AuditEvent, KihonetUser
from issuance.pki import crl
from issuance.selectors.dashboard import CHART_MONTHS, MonthBar, _add_months, dashboard
from issuance.selectors.search import SearchLookup, classify_search_term, search
from issuance.selectors.users import user_overview
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db
LINE = "総合福祉団体定期保険"  # 団体保険課 and 法人サービスセンター
SOURCE = Path(__file__).resolve().parents[2]


@pytest.fixture
def user(db) -> KihonetUser:
    customer = make_customer(product_lines=(LINE,), started_using=True, name="デモ商事株式会社")
    found = make_user(
        customer, user_id="K7Q2X9A", management_number="MX12345678", email="sato@demo.example.jp"
    )
    make_notice(found)
    return found


@pytest.fixture
def clerk(db):
    return make_staff(roles.CLERK, desk("団体保険課"))


def user_url(user) -> str:
    return reverse("admin:issuance_kihonetuser_change", args=[user.pk])


# --- Japanese everywhere ----------------------------------------------------------------------


def test_every_audit_action_the_code_writes_has_a_japanese_name():
    written = set()
    for path in [*SOURCE.glob("issuance/**/*.py"), *SOURCE.glob("notifications/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        written |= set(
            re.findall(
                r"(?:audit\.record|audit\.event|create_with_event)\(\s*[^\"]*?,\s*\"([a-z_]+)\"",
                text,
                re.S,
            )
        )
    assert {"certificate_issued", "notice_reissued", "reminder_resent"} <= written
    assert written <= set(labels.AUDIT_ACTIONS), written - set(labels.AUDIT_ACTIONS)


def test_every_revocation_reason_has_a_japanese_name():
    assert set(crl.REASONS) == set(labels.REVOCATION_REASONS)
    assert labels.revocation_reason("cessationOfOperation") == "利用の終了"


def test_the_audit_trail_reads_in_japanese_with_details_in_words_and_japan_time(user):
    certificate = make_certificate(user)
    supervisor = make_staff(roles.SUPERVISOR)
    event = audit.record(
        audit.Actor.system("enrollment"),
        "certificate_revoked",
        certificate,
        kihonet_user=user,
        detail={"serial": certificate.serial, "reason": "superseded"},
    )
    AuditEvent.objects.filter(pk=event.pk).update(
        created_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    )
    client = staff_client(supervisor)
    listing = client.get(reverse("admin:issuance_auditevent_changelist")).content.decode()
    assert "証明書の失効" in listing and "再発行・更新による置き換え" in listing
    assert ">certificate_revoked<" not in listing
    page = client.get(reverse("admin:issuance_auditevent_change", args=[event.pk]))
    html = page.content.decode()
    assert '<table class="kn-detail">' in html and "シリアル番号" in html
    assert "クライアント証明書" in html.split("対象の種類")[1][:200]  # not "certificate"
    assert "{&quot;" not in html and '{"serial"' not in html  # no raw JSON
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "2026/12/01 08:30" in title  # 23:30 UTC is 08:30 the next day in Japan
    screen = client.get(user_url(user)).content.decode()
    assert "証明書の失効" in screen and "理由：再発行・更新による置き換え" in screen


def test_the_403_page_is_in_japanese(user, clerk):
    certificate = make_certificate(user)
    url = reverse("admin:issuance_kihonetuser_revoke", args=[user.pk, certificate.pk])
    response = staff_client(clerk).get(url)
    html = response.content.decode()
    assert response.status_code == 403
    assert "このページを表示する権限がありません" in html and "スーパーバイザー" in html
    assert "Forbidden" not in html


def test_help_texts_show_no_rule_ids(user, clerk):
    client = staff_client(clerk)
    reissue = client.get(reverse("admin:issuance_kihonetuser_reissue", args=[user.pk]))
    notice = client.get(reverse("admin:issuance_notice_change", args=[user.notices.get().pk]))
    for page in (reissue, notice, client.get(user_url(user))):
        assert page.status_code == 200
        assert not re.search(r"[（(]R\d\d[）)]", page.content.decode())


# --- Search -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    [
        "K7Q2X9A",  # whole ユーザーID
        "k7q2",  # its prefix, lower case
        "Ｑ２Ｘ９",  # a part, full-width
        "MX1234",  # prefix of 管理番号
        "x12345678",  # the rest of it, lower case
        "sato@demo",  # the start of the e-mail address
        "demo.example",  # a part of it
        "デモ商事",  # the company name
        "ﾃﾞﾓ商事",  # typed in half-width katakana
    ],
)
def test_staff_find_the_user_by_a_part_of_any_key(user, clerk, term):
    code = user.customer.kihonet_code
    other = make_user(make_customer(product_lines=(LINE,), started_using=True, name="別会社"))
    client = staff_client(clerk)
    found = client.get(reverse("admin:issuance_kihonetuser_changelist"), {"q": term})
    ids = [u.pk for u in found.context["cl"].result_list]
    assert ids == [user.pk], term
    by_code = client.get(reverse("admin:issuance_kihonetuser_changelist"), {"q": code[:5]})
    assert user.pk in [u.pk for u in by_code.context["cl"].result_list]  # prefix of the code
    assert other.pk not in ids


def test_a_whole_address_is_looked_up_exactly_and_results_are_sorted_after_the_search(user, clerk):
    kinds = classify_search_term
    assert kinds("Sato@Demo.Example.JP")["email"] == SearchLookup(
        "exact", ("sato@demo.example.jp",)
    )
    assert kinds("sato@demo")["email"].lookup == "icontains"
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_changelist")
    with CaptureQueriesContext(connection) as queries:
        found = client.get(url, {"q": "Sato@Demo.Example.JP"}).context["cl"].result_list
    assert [u.pk for u in found] == [user.pk]
    page = [
        q["sql"]
        for q in queries.captured_queries
        if "ORDER BY" in q["sql"] and "issuance_kihonetuser" in q["sql"].split("FROM")[1]
    ]
    assert page and all("COALESCE" in sql.split("ORDER BY")[1] for sql in page), page
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    unsearched = [
        q["sql"]
        for q in queries.captured_queries
        if "ORDER BY" in q["sql"] and "issuance_kihonetuser" in q["sql"].split("FROM")[1]
    ]
    assert unsearched and not any("COALESCE" in sql for sql in unsearched)  # the index order


def test_r15_a_partial_search_stays_inside_the_desk(user):
    outsider = make_staff(roles.CLERK, desk("名古屋法人サービス課"))
    found = staff_client(outsider).get(
        reverse("admin:issuance_kihonetuser_changelist"), {"q": "デモ商事"}
    )
    assert list(found.context["cl"].result_list) == []


def test_the_dashboard_has_a_search_box_for_users(clerk):
    html = staff_client(clerk).get(reverse("admin:index")).content.decode()
    form = html.split('class="kn-search"')[0].rsplit("<form", 1)[1]
    assert reverse("admin:issuance_kihonetuser_changelist") in form
    assert 'name="q"' in html.split('class="kn-search"')[1].split("</form>")[0]


@pytest.mark.postgres
def test_on_postgresql_the_contains_searches_use_the_trigram_indexes(user):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    queries = {
        "kihonetuser_user_id_trgm": KihonetUser.objects.filter(user_id__icontains="Q2X"),
        "kihonetuser_management_number_trgm": KihonetUser.objects.filter(
            management_number__icontains="234"
        ),
        "kihonetuser_email_trgm": KihonetUser.objects.filter(email__icontains="demo.ex"),
        "customer_name_trgm": KihonetUser.objects.filter(customer__name__icontains="デモ商事"),
        "customer_kihonet_code_trgm": KihonetUser.objects.filter(
            customer__kihonet_code__icontains="0000"
        ),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the tables are tiny here
        cursor.execute("SET LOCAL enable_indexscan = off")  # nor a walk of another index
        for index, queryset in queries.items():
            sql, params = queryset.order_by().values("pk").query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan


# --- Actions that match the state -------------------------------------------------------------


def test_r09_r10_resend_is_offered_only_from_the_renewal_window_to_the_expiry(user, clerk):
    early = make_certificate(user, days_left=100)
    due = make_certificate(user, days_left=5)  # the 7-day stage
    expired = make_certificate(user, days_left=-2)
    html = staff_client(clerk).get(user_url(user)).content.decode()
    resend = "admin:issuance_kihonetuser_resend"
    assert reverse(resend, args=[user.pk, due.pk]) in html
    for certificate in (early, expired):
        assert reverse(resend, args=[user.pk, certificate.pk]) not in html
    refused = staff_client(clerk).post(reverse(resend, args=[user.pk, early.pk]), {"reason": ""})
    assert refused.status_code == 200 and "更新期間" in refused.content.decode()


def test_r10_a_resent_mail_shows_at_once_under_the_reminders_with_its_state(
    user, clerk, mailoutbox
):
    certificate = make_certificate(user, days_left=20)
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_resend", args=[user.pk, certificate.pk])
    assert client.post(url, {"reason": "届いていないとのお電話"}).status_code == 302
    assert len(mailoutbox) == 1 and "残り7日" not in mailoutbox[0].body
    overview = user_overview(user)
    [row] = overview.reminders
    assert (row.serial, row.status, row.resent_by) == (certificate.serial, "sent", clerk.username)
    reminders = client.get(user_url(user)).content.decode().split('id="kn-reminders"')[1]
    reminders = reminders.split("</section>")[0]
    assert "30日前（窓口から再送）" in reminders and "送信済み" in reminders


def test_r10_a_resend_for_a_renewed_certificate_says_nothing_is_left_to_do(user, clerk, mailoutbox):
    old = make_certificate(user, days_left=20)
    make_certificate(user, days_left=1115, renewed_from=old)
    url = reverse("admin:issuance_kihonetuser_resend", args=[user.pk, old.pk])
    assert staff_client(clerk).post(url, {"reason": ""}).status_code == 302
    body = mailoutbox[0].body
    assert "すでに更新のお手続きが完了しています" in body and "お手続きは不要です" in body
    assert "以下の手順で" not in body and "7日前にお送りしております" not in body


def test_the_revoke_form_has_no_reason_chosen_and_explains_each(user):
    certificate = make_certificate(user)
    page = staff_client(make_staff(roles.SUPERVISOR)).get(
        reverse("admin:issuance_kihonetuser_revoke", args=[user.pk, certificate.pk])
    )
    html = page.content.decode()
    radios = re.findall(r'<input type="radio" name="reason"[^>]*>', html)
    assert len(radios) == 5 and not any("checked" in radio for radio in radios)
    assert html.count('class="kn-choice-help"') == 5 and "解約" in html


def test_history_opens_the_audit_trail_of_that_user_and_no_field_is_repeated(user, clerk):
    other = make_user(make_customer(product_lines=(LINE,), started_using=True))
    for someone in (user, other):
        audit.record(audit.Actor.system("enrollment"), "email_confirmed", kihonet_user=someone)
    client = staff_client(clerk)
    html = client.get(user_url(user)).content.decode()
    trail = reverse("admin:issuance_auditevent_changelist")
    assert f'href="{trail}?kihonet_user__id__exact={user.pk}"' in html
    assert 'class="object-tools"' not in html  # no Django history button over the tables
    assert "field-user_id" not in html and "field-email" not in html  # no fields below
    history = client.get(reverse("admin:issuance_kihonetuser_history", args=[user.pk]))
    assert history.status_code == 302
    listed = client.get(history["Location"]).context["cl"].result_list
    assert [event.kihonet_user_id for event in listed] == [user.pk]
    superuser = make_staff(None, is_superuser=True)
    editable = staff_client(superuser).get(user_url(user)).content.decode()
    assert '<details class="kn-edit">' in editable and "field-email" in editable


def test_the_dashboard_chart_counts_a_certificate_issued_today(user):
    make_certificate(user, days_left=1095, not_before=timezone.now())
    figures = dashboard(desk("団体保険課"))
    assert sum(bar.count for bar in figures.months) == 1
    assert figures.months[-1].count == 1


def test_the_chart_never_names_two_years_side_by_side():
    from issuance.admin_site import expiry_chart

    for first_month in range(1, 13):
        months = [
            MonthBar(_add_months(date(2026, first_month, 1), i), 0) for i in range(CHART_MONTHS)
        ]
        named = [bar["x"] for bar in expiry_chart(months)["bars"] if bar["year_label"]]
        assert all(b - a >= 60 for a, b in itertools.pairwise(named)), first_month


def test_times_are_shown_in_japan_time():
    assert timezone.get_current_timezone_name() == "Asia/Tokyo"
    assert labels.format_moment(datetime(2026, 1, 1, 15, tzinfo=UTC)) == ("2026/01/02 00:00")
    assert labels.audit_detail(
        "certificate_issued", {"not_after": "2029-12-01T15:00:00+00:00"}
    ) == [("有効期限", "2029/12/02 00:00")]


def test_the_reminders_history_is_the_audit_trail_of_its_user(user):
    from notifications.models import ExpiryReminder

    certificate = make_certificate(user, days_left=20)
    reminder = ExpiryReminder.objects.create(
        certificate=certificate, stage=30, status="failed", email=user.email, message_id="<m@x>"
    )
    client = staff_client(make_staff(roles.SUPERVISOR))
    response = client.get(reverse("admin:notifications_expiryreminder_history", args=[reminder.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"?kihonet_user__id__exact={user.pk}")


def test_a_part_of_a_key_through_a_relation_is_looked_up_on_its_own_table_first(user):
    """The certificate list's partial ユーザーID search finds the users on their own table (its
    trigram index), then their certificates by id: never the contains-search across the join
    that walked a million certificates (bench admin_search: 167 ms, now about 50 ms)."""
    from issuance.models import Certificate

    mine = make_certificate(user)
    make_certificate(make_user())
    part = user.user_id[1:5]
    with CaptureQueriesContext(connection) as queries:
        found = list(search(Certificate.objects.all(), part, {"user_id": "user__user_id"}))
    assert found == [mine]
    contains = [q["sql"] for q in queries if "LIKE" in q["sql"].upper()]
    assert contains and all('"issuance_certificate"' not in sql for sql in contains), contains
