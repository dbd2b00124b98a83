"""The public pages give a way forward from every error (R02, R03, R15, R17), and every page
has one <h1>, the favicon, callable phone numbers and the footer's links."""

from __future__ import annotations

import re
from datetime import date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse

from issuance.models import InputLock, Notice
from issuance.rules import business_days
from tests.factories import enrollment_fields, make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db

JST = ZoneInfo("Asia/Tokyo")
HOURS = "受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）"
ENROLL = "/enroll/"


def error_box(html: str) -> str:
    match = re.search(r'<div class="alert alert-danger"[^>]*id="enroll-error".*?</div>', html, re.S)
    assert match, html
    return match.group(0)


def started_notice() -> Notice:
    customer = make_customer(product_lines=("団体信用生命保険",), started_using=True)
    return make_notice(make_user(customer), issued_on=date(2025, 4, 1))


# --------------------------------------------------------------------------- 3420 (R03)


def test_r03_the_3420_page_is_the_same_whichever_field_is_wrong(client):
    """A wrong management number, user ID, branch number or e-mail: the same words, the same
    desks; no field marked."""
    notice = started_notice()
    boxes = set()
    for changes in [
        {"management_number": "ZZ99999999"},
        {"user_id": "ZZ99999"},
        {"branch_number": "002"},
        {"email": "other@example.jp"},
    ]:
        response = client.post(ENROLL, enrollment_fields(notice, **changes))
        assert response.status_code == 200
        html = response.content.decode()
        assert "is-invalid" not in html
        boxes.add(error_box(html))
    assert len(boxes) == 1
    box = boxes.pop()
    assert "入力情報エラー" in box and "ステータスコード：3420" in box


def test_r15_the_3420_page_names_the_desks_of_the_codes_product_lines_with_hours(client):
    notice = started_notice()
    box = error_box(
        client.post(ENROLL, enrollment_fields(notice, user_id="ZZ99999")).content.decode()
    )
    assert "団体信用生命保険：団体保険課" in box
    assert '<a class="phone alert-link" href="tel:0120338688">0120-338-688</a>' in box
    assert '<a class="phone alert-link" href="tel:0120563928">0120-563-928</a>' in box
    assert HOURS in box
    assert "0120-150-012" not in box


@pytest.mark.parametrize("code", ["starting", "unknown"])
def test_r15_before_starting_or_for_a_code_not_ours_the_support_centre(client, code):
    customer = make_customer(started_using=False)
    notice = make_notice(make_user(customer))
    kihonet_code = customer.kihonet_code if code == "starting" else "99999999"
    response = client.post(
        ENROLL, enrollment_fields(notice, kihonet_code=kihonet_code, user_id="ZZ99999")
    )
    box = error_box(response.content.decode())
    assert "企保ネット導入サポートセンター" in box
    assert 'href="tel:0120150012">0120-150-012</a>' in box
    assert HOURS in box


def test_r02_the_year_end_hint_only_where_it_can_apply(client):
    """The hint (「12月の最終営業日に…発行年の翌年…」) shows once the last business day of
    December of the year typed has come: a notice of that day may be the customer's."""
    notice = started_notice()
    last = business_days.last_business_day_of_december(2026)
    assert last == date(2026, 12, 30)
    cases = [
        (datetime(2026, 6, 1, 10, tzinfo=JST), "2026", False),
        (datetime(2026, 12, 29, 10, tzinfo=JST), "2026", False),
        (datetime(2026, 12, 30, 10, tzinfo=JST), "2026", True),
        (datetime(2027, 1, 5, 10, tzinfo=JST), "2026", True),
        (datetime(2026, 6, 1, 10, tzinfo=JST), "2025", True),
    ]
    for now, year, shown in cases:
        with time_machine.travel(now, tick=False):
            html = client.post(
                ENROLL, enrollment_fields(notice, year=year, user_id="ZZ99999")
            ).content
        box = error_box(html.decode())
        hint = f"年末にお手続きを行ったお客様は、発行年の翌年（{int(year) + 1}）の入力をお試しください。"
        assert (hint in box) is shown, (now, year)
        assert ("12月の最終営業日にユーザーID発行のお手続きを行った場合は" in box) is shown


def test_r02_year_end_hint_rule():
    assert not business_days.year_end_hint_applies(2026, date(2026, 12, 29))
    assert business_days.year_end_hint_applies(2026, date(2026, 12, 30))
    assert business_days.year_end_hint_applies(2025, date(2026, 1, 1))


# --------------------------------------------------------------------------- 3430, the lock


def test_the_lock_page_says_until_when_what_to_do_and_whom_to_call(client):
    """3430: the end of the lock (its time and how long from now), what to do meanwhile, and
    the desk to call, which can lift it."""
    notice = started_notice()
    with time_machine.travel(datetime(2026, 12, 1, 14, 0, tzinfo=JST), tick=False):
        for _ in range(5):
            client.post(ENROLL, enrollment_fields(notice, management_number="ZZ99999999"))
    lock = InputLock.objects.get(kind=InputLock.Kind.PERSON)
    assert lock.locked_until == datetime(2026, 12, 1, 15, 0, tzinfo=JST)
    with time_machine.travel(datetime(2026, 12, 1, 14, 20, tzinfo=JST), tick=False):
        response = client.post(ENROLL, enrollment_fields(notice))
    box = error_box(response.content.decode())
    assert "ステータスコード：3430" in box
    assert "2026年12月1日 15:00以降（あと40分ほど）に、もう一度お手続きいただけます" in box
    assert "6つの項目をご確認ください" in box
    assert "お急ぎの場合は、下記の照会先にお電話ください" in box
    assert "ロックを解除いたします" in box
    assert 'href="tel:0120338688">0120-338-688</a>' in box
    assert HOURS in box


def test_the_lock_in_the_api_gives_its_end_time(client):
    notice = started_notice()
    url = "/api/v1/enrollments"
    for _ in range(5):
        client.post(
            url,
            enrollment_fields(notice, management_number="ZZ99999999"),
            content_type="application/json",
        )
    response = client.post(url, enrollment_fields(notice), content_type="application/json")
    body = response.json()
    assert (response.status_code, body["status_code"]) == (429, "3430")
    lock = InputLock.objects.get(kind=InputLock.Kind.PERSON)
    assert datetime.fromisoformat(body["locked_until"]) == lock.locked_until
    until = lock.locked_until.astimezone(JST)
    assert f"{until:%H:%M}までお手続きを受け付けられません" in body["message"]


# --------------------------------------------------------------------------- every page


def public_pages(client) -> dict[str, str]:
    notice = started_notice()
    pages = {
        name: client.get(reverse(name)).content.decode()
        for name in [
            "issuance:home",
            "issuance:enroll",
            "issuance:renew",
            "issuance:login-check",
            "issuance:manual",
            "issuance:accessibility",
            "issuance:enroll-issue",  # nothing under way: the restart page
        ]
    }
    pages["3420"] = client.post(
        ENROLL, enrollment_fields(notice, user_id="ZZ99999")
    ).content.decode()
    pages["confirm"] = client.get(
        client.post(ENROLL, enrollment_fields(notice)).headers["Location"]
    ).content.decode()
    return pages


def test_every_public_page_has_one_h1_the_favicon_and_the_footer_links(client):
    for name, html in public_pages(client).items():
        assert len(re.findall(r"<h1[\s>]", html)) == 1, name
        assert 'rel="icon"' in html, name
        footer = html[html.index("<footer") :]
        assert (
            f'href="{reverse("issuance:accessibility")}">ウェブアクセシビリティ方針</a>' in footer
        )
        assert (
            f'href="{reverse("issuance:manual")}">クライアント証明書新規取得・更新マニュアル</a>'
            in footer
        )
    for path in ["issuance/favicon.ico", "issuance/favicon.svg", "issuance/apple-touch-icon.png"]:
        assert finders.find(path), path


def test_favicon_ico_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("issuance/favicon.ico")


def test_r15_phone_numbers_are_tel_links_on_the_home_page(client):
    html = client.get("/").content.decode()
    assert '<a class="phone" href="tel:0120150012">0120-150-012</a>' in html
    assert '<a class="phone" href="tel:0120563924">0120-563-924</a>' in html
    assert not re.search(r'<span class="phone">', html)


# --------------------------------------------------------------------------- the manual


MANUAL_LINE = "お手続きの詳細は、「クライアント証明書新規取得・更新マニュアル」をご参照ください。"
# Lines of the manual, word for word.
MANUAL_STEPS = [
    "④RAカスタムプラグインクライアントツールが起動し、「受付を開始しました。」と表示されれば起動完了です。",
    "⑥入力欄に、「企保ネットコード」「管理番号」「ユーザーID」「年」「枝番」「Eメールアドレス」を入力し、『OK』ボタンをクリックしてください。",
    "（※）ただし、12月の最終営業日にユーザーID発行のお手続きを行った場合は、【ユーザーIDのお知らせ】に記載されている発行年の翌年を西暦で入力する必要があります。",
    "⑧画面に「クライアント証明書の作成が完了しました」が表示されたら、クライアント証明書の新規取得は成功です。企保ネットにログインできることをご確認ください。",
    "なお、クライアント証明書を更新するには、Windowsの管理者権限が必要な場合があります。",
    "（※2）更新済みの場合も、有効期限の7日前に再送信されますのでご了承ください。",
    "⑦ご使用のパソコンにクライアント証明書が複数インストールされている場合は、更新するクライアント証明書を選択する欄が表示されます。",
    "⑧画面に「クライアント証明書の更新が完了しました」と表示されたら、クライアント証明書の更新は成功です。",
]


def text_of(html: str) -> str:
    return re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", html))


def test_the_home_pages_manual_line_links_to_the_manual(client):
    html = client.get("/").content.decode()
    line = re.search(r'<p id="manual-link">(.*?)</p>', html, re.S).group(1)
    assert text_of(line) == MANUAL_LINE
    assert (
        f'<a href="{reverse("issuance:manual")}">クライアント証明書新規取得・更新マニュアル</a>'
        in line
    )


def test_the_manual_page_gives_the_manuals_steps_in_its_words(client):
    text = text_of(client.get(reverse("issuance:manual")).content.decode())
    for step in MANUAL_STEPS:
        assert re.sub(r"\s+", "", step) in text, step


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [("http://127.0.0.1:8080", False), ("https://kihonet.example.jp", True)],
)
def test_r17_the_manual_warns_about_the_s_only_for_https(client, settings, base_url, warned):
    settings.KIHONET_BASE_URL = base_url
    html = client.get(reverse("issuance:manual")).content.decode()
    assert f'URL ⇒ <span class="site-url text-break">{base_url}/</span>' in html
    assert ("httpsの「s」の入力漏れにご注意ください" in html) is warned


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [("http://127.0.0.1:8080", False), ("https://kihonet.example.jp", True)],
)
def test_r17_seed_demo_prints_the_url_to_type_and_warns_only_for_https(settings, base_url, warned):
    settings.KIHONET_BASE_URL = base_url
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert f"URL ⇒ {base_url}/" in out.getvalue()
    assert ("httpsの「s」の入力漏れにご注意ください" in out.getvalue()) is warned


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [("http://127.0.0.1:8080", False), ("https://kihonet.example.jp", True)],
)
def test_r17_the_printed_notice_warns_only_for_https(settings, base_url, warned):
    from django.template.loader import render_to_string

    from issuance.admin.printing import notice_context

    settings.KIHONET_BASE_URL = base_url
    html = render_to_string("issuance/notices/notice.html", notice_context(started_notice()))
    assert f'<span class="url">{base_url}/</span>' in html
    assert ("httpsの「s」の入力漏れにご注意ください" in html) is warned


# --------------------------------------------------------------------------- the policy


def test_the_accessibility_policy_states_level_pages_date_and_tool(client):
    from issuance import accessibility

    html = client.get(reverse("issuance:accessibility")).content.decode()
    assert "<h1" in html and "ウェブアクセシビリティ方針" in html
    assert "JIS X 8341-3:2016の適合レベルAAに準拠することを目標とします。" in html
    for name, url in accessibility.PAGES:
        assert f'<a href="{reverse(url)}">{name}</a>' in html
    day = accessibility.TEST_DATE
    assert f"{day.year}年{day.month}月{day.day}日" in html
    assert f"axe-core {accessibility.AXE_CORE_VERSION}" in html


def test_a_missing_page_and_a_stale_form_get_a_japanese_page_with_a_way_on(client):
    from django.test import Client

    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert len(re.findall(r"<h1[\s>]", html)) == 1 and "ページが見つかりません" in html
    assert f'href="{reverse("issuance:home")}"' in html

    stale = Client(enforce_csrf_checks=True).post(ENROLL, {"kihonet_code": "12345678"})
    assert stale.status_code == 403
    html = stale.content.decode()
    assert len(re.findall(r"<h1[\s>]", html)) == 1 and "送信できませんでした" in html
    assert "もう一度最初の画面からお手続きください" in html
    assert f'href="{reverse("issuance:home")}"' in html


def test_the_server_error_page_is_japanese_with_one_h1():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert len(re.findall(r"<h1[\s>]", html)) == 1 and "ただいまご利用いただけません" in html


def test_a_missing_back_office_page_leads_back_to_the_dashboard(admin_client):
    html = admin_client.get("/admin/issuance/kihonetuser/999999/change/").content.decode()
    assert "ページが見つかりません" in html
    assert f'href="{reverse("admin:index")}"' in html
