"""New acquisition: the six fields, the e-mail confirmation, the certificate (R01 to R07)."""

import json
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from issuance.errors import (
    InputMismatchError,
    IssuedForAnotherKeyError,
    LockedError,
    NoticeUsedError,
    TokenError,
)
from issuance.models import AuditEvent, Certificate, InputLock, MismatchAlert, Notice
from issuance.services import enrollment
from tests.csr import make_csr
from tests.factories import enrollment_fields, make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db


def post_json(client, url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    response = client.post(url, data=data, content_type="application/json")
    return response.status_code, response.json()


def start(notice: Notice, **changes) -> str:
    _, token = enrollment.start_enrollment(
        enrollment.NoticeFields(**enrollment_fields(notice, **changes)), ip_address="192.0.2.1"
    )
    return token


def lock_out(notice: Notice, **wrong: str) -> None:
    """Five wrong tries at ``notice`` (R03): the next one, even right, is refused as locked."""
    for _ in range(5):
        with pytest.raises(InputMismatchError):
            start(notice, **(wrong or {"year": "1999"}))
    with pytest.raises(LockedError):
        start(notice)


def acquire(client, notice: Notice) -> dict:
    status, body = post_json(client, "/api/v1/enrollments", enrollment_fields(notice))
    assert status == 201, body
    token = body["token"]
    assert post_json(client, f"/api/v1/enrollments/{token}/confirm", {})[0] == 200
    status, body = post_json(
        client, f"/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]}
    )
    assert status == 201, body
    return body


# --- R01: the six fields -------------------------------------------------------------------


def test_r01_form_shows_the_six_fields_with_the_manuals_hints(client):
    page = client.get(reverse("issuance:enroll")).content.decode()
    for name in ["kihonet_code", "management_number", "user_id", "year", "branch_number", "email"]:
        assert f'name="{name}"' in page
    for hint in [
        "（「ユーザーIDのお知らせ」に記載の企保ネットコードを半角数字でご入力ください。）",
        "（「ユーザーIDのお知らせ」に記載の管理番号を半角英数字でご入力ください。）",
        "（「ユーザーIDのお知らせ」に記載のユーザーIDを半角英数字でご入力ください。）",
        "（「ユーザーIDのお知らせ」の右上に記載されている発行年を西暦にて半角数字でご入力ください。）",
        "（新規取得：「001」と半角数字でご入力ください。 再発行：再発行完了の通知文書に印字されている枝番を半角数字でご入力ください。）",
        "（3年後の更新時にはこのアドレス宛に案内を送信します。）",
    ]:
        assert hint in page


def test_r01_full_width_input_and_stray_spaces_are_normalised(client, issuing_ca):
    notice = make_notice(make_user(user_id="AB12345", management_number="KN00000001"))
    code = notice.user.customer.kihonet_code
    full_width = {
        "kihonet_code": " " + code.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "management_number": "ＫＮ０００００００１ ",
        "user_id": "ＡＢ１２３４５",
        "year": "２０２６",
        "branch_number": "００１",
        "email": " " + notice.email.upper(),
    }
    response = client.post(reverse("issuance:enroll"), full_width)
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == reverse("issuance:enroll-confirm")


def test_r01_format_errors_are_shown_at_their_field_in_japanese(client):
    response = client.post(
        reverse("issuance:enroll"),
        {
            "kihonet_code": "1234",
            "management_number": "ABC",
            "user_id": "toolong1",
            "year": "26",
            "branch_number": "1",
            "email": "not-an-address",
        },
    )
    form = response.context["form"]
    assert form.errors["kihonet_code"] == ["企保ネットコードは半角数字8桁でご入力ください。"]
    assert form.errors["management_number"] == ["管理番号は半角英数字10桁でご入力ください。"]
    assert form.errors["user_id"] == ["ユーザーIDは半角英数字7桁でご入力ください。"]
    assert form.errors["year"] == ["年は西暦の半角数字4桁でご入力ください。"]
    assert form.errors["branch_number"] == ["枝番は半角数字3桁でご入力ください。"]
    assert form.errors["email"] == ["Eメールアドレスを半角英数字で正しくご入力ください。"]


# --- R02 and R03 ---------------------------------------------------------------------------


def test_r02_year_end_notice_accepts_the_next_year_and_the_printed_year():
    notice = make_notice(issued_on=date(2026, 12, 30))
    assert (notice.printed_year, notice.registration_year) == (2026, 2027)
    assert start(notice, year="2027")
    assert start(notice, year="2026")
    with pytest.raises(InputMismatchError):
        start(notice, year="2025")


@pytest.mark.parametrize(
    "field", ["kihonet_code", "management_number", "user_id", "year", "branch_number", "email"]
)
def test_r03_any_mismatch_gives_3420_without_naming_the_field(client, field):
    notice = make_notice()
    wrong = {
        "kihonet_code": "99999999",
        "management_number": "ZZ99999999",
        "user_id": "ZZ99999",
        "year": "2019",
        "branch_number": "002",
        "email": "other@example.jp",
    }[field]
    status, body = post_json(
        client, "/api/v1/enrollments", enrollment_fields(notice, **{field: wrong})
    )
    assert status == 400
    assert body == {"status_code": "3420", "message": "入力情報エラー"}
    page = client.post(reverse("issuance:enroll"), enrollment_fields(notice, **{field: wrong}))
    html = page.content.decode()
    assert "入力情報エラー" in html and "ステータスコード：3420" in html
    assert "invalid-feedback" not in html  # no field is marked


# --- R04: the e-mail confirmation ------------------------------------------------------------


def test_r04_confirmation_shows_the_address_with_the_manuals_text(client):
    notice = make_notice()
    client.post(reverse("issuance:enroll"), enrollment_fields(notice))
    page = client.get(reverse("issuance:enroll-confirm")).content.decode()
    assert notice.email in page
    assert (
        "Eメールアドレスが正しければ[OK]を、正しくない場合には[キャンセル]をクリックして"
        "新規取得ページ上のEメールアドレスを修正してください。"
    ) in page
    assert "Eメールアドレスが間違っていると、クライアント証明書の取得ができなくなります。" in page


def test_r04_cancel_returns_to_the_form_with_the_values_kept(client):
    notice = make_notice()
    client.post(reverse("issuance:enroll"), enrollment_fields(notice))
    form = client.get(reverse("issuance:enroll")).context["form"]
    assert form.initial == enrollment_fields(notice)


def test_r04_no_certificate_before_the_address_is_confirmed(client, issuing_ca):
    notice = make_notice()
    token = start(notice)
    status, body = post_json(
        client, f"/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]}
    )
    assert (status, body["status_code"]) == (409, "3451")
    assert Certificate.objects.count() == 0


def test_r04_ok_moves_on_to_issuing(client):
    notice = make_notice()
    client.post(reverse("issuance:enroll"), enrollment_fields(notice))
    response = client.post(reverse("issuance:enroll-confirm"))
    assert response["Location"] == reverse("issuance:enroll-issue")
    assert notice.enrollments.get().confirmed_at is not None


# --- R05, R06, R07: the certificate ---------------------------------------------------------


def test_r06_r07_completion_after_acquisition(client, issuing_ca):
    notice = make_notice()
    client.post(reverse("issuance:enroll"), enrollment_fields(notice))
    client.post(reverse("issuance:enroll-confirm"))
    token = client.session["enroll_token"]
    status, body = post_json(
        client, f"/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]}
    )
    assert status == 201
    page = client.get(reverse("issuance:enroll-complete")).content.decode()
    assert "クライアント証明書の作成が完了しました" in page
    assert "「企業保険インターネットサービス」にログイン可能になったことをご確認ください。" in page
    certificate = Certificate.objects.get()
    assert certificate.serial in page and body["serial"] == certificate.serial
    expiry = certificate.not_after.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{expiry.year}年{expiry.month}月{expiry.day}日" in page


def test_r05_the_registered_address_goes_into_the_certificate(client, issuing_ca):
    notice = make_notice(email="person@example.jp")
    body = acquire(client, notice)
    assert "person@example.jp" == Certificate.objects.get(serial=body["serial"]).email
    notice.refresh_from_db()
    assert notice.used_at is not None
    assert notice.user.customer.started_using


def test_r07_certificate_response_carries_certificate_and_chain(client, issuing_ca):
    body = acquire(client, make_notice())
    assert body["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert body["chain"] == issuing_ca.chain_pem
    assert AuditEvent.objects.filter(action="certificate_issued").count() == 1


# --- R15, R16: a used notice -----------------------------------------------------------------


def test_r16_a_used_notice_needs_a_reissue_and_names_the_desks(client, issuing_ca):
    customer = make_customer(product_lines=("団体信用生命保険",))
    notice = make_notice(make_user(customer))
    acquire(client, notice)
    status, body = post_json(client, "/api/v1/enrollments", enrollment_fields(notice))
    assert (status, body["status_code"]) == (409, "3440")
    assert "再発行" in body["message"]
    assert body["desks"] == [
        {"product_line": "団体信用生命保険", "desk": "団体保険課", "phone": "0120-338-688"},
        {
            "product_line": "団体信用生命保険",
            "desk": "法人サービスセンター",
            "phone": "0120-563-928",
        },
    ]
    page = client.post(reverse("issuance:enroll"), enrollment_fields(notice)).content.decode()
    assert "0120-338-688" in page and "再発行" in page


def test_r16_an_older_notice_is_replaced_by_the_reissue_notice(issuing_ca):
    notice = make_notice()
    make_notice(notice.user, branch_number="002")
    with pytest.raises(NoticeUsedError):
        start(notice)


# --- Tokens ------------------------------------------------------------------------------------


def test_token_is_one_time_and_short_lived(client, issuing_ca, settings):
    notice = make_notice()
    token = start(notice)
    enrollment.confirm_email(token, ip_address=None)
    enrollment.complete_enrollment(token, make_csr()[1], ip_address=None)
    with pytest.raises(IssuedForAnotherKeyError):  # sent again: only for the first key
        enrollment.complete_enrollment(token, make_csr()[1], ip_address=None)
    notice.certificates.update(created_at=timezone.now() - timedelta(days=1))
    with pytest.raises(TokenError):  # and only for a while (KIHONET_ISSUE_REPLAY_HOURS)
        enrollment.complete_enrollment(token, make_csr()[1], ip_address=None)
    other = make_notice()
    expired = start(other)
    other.enrollments.update(expires_at=other.enrollments.get().created_at - timedelta(seconds=1))
    with pytest.raises(TokenError):
        enrollment.confirm_email(expired, ip_address=None)
    assert len(token) >= 43  # 256 bits, URL-safe base64


# --- Brute force ------------------------------------------------------------------------------


def test_r03_five_mismatches_for_one_person_lock_that_person_with_its_own_status_code(client):
    notice = make_notice()
    for _ in range(5):
        status, body = post_json(
            client, "/api/v1/enrollments", enrollment_fields(notice, management_number="ZZ99999999")
        )
        assert body["status_code"] == "3420"
    status, body = post_json(client, "/api/v1/enrollments", enrollment_fields(notice))
    assert (status, body["status_code"]) == (429, "3430")
    lock = InputLock.objects.get()
    user = notice.user
    assert (lock.kind, lock.value, lock.user_id) == (
        "person",
        user.customer.kihonet_code,
        user.user_id,
    )
    assert datetime.fromisoformat(body["locked_until"]) == lock.locked_until
    assert body["locked_until"].endswith("+09:00")  # Japan time
    assert AuditEvent.objects.filter(action="input_locked").exists()


def test_r03_the_lock_is_per_person_not_per_company(client):
    """Five misses against one user's notice lock that user only: anyone who knows a
    company's 8-digit code must not lock all its users out."""
    victim = make_notice()
    colleague = make_notice(make_user(victim.user.customer))
    lock_out(victim)
    assert start(colleague)
    status, _ = post_json(client, "/api/v1/enrollments", enrollment_fields(colleague))
    assert status == 201


def test_r03_guessing_user_ids_of_a_company_locks_nobody_and_alerts_the_desk(settings):
    settings.KIHONET_INPUT_ALERT_COMPANY_FAILURES = 12
    notice = make_notice()
    code = notice.user.customer.kihonet_code
    for n in range(15):  # one address each, so that only the company count grows
        with pytest.raises(InputMismatchError):
            enrollment.start_enrollment(
                enrollment.NoticeFields(**enrollment_fields(notice, user_id=f"ZZ{n:05d}")),
                ip_address=f"198.51.100.{n + 1}",
            )
    assert not InputLock.objects.exists()
    alert = MismatchAlert.objects.get()  # once per window, at the threshold
    assert (alert.kihonet_code, alert.failures) == (code, 12)
    assert AuditEvent.objects.filter(action="input_mismatch_alert").count() == 1
    assert start(notice)


def test_twenty_mismatches_from_one_address_lock_the_address():
    for n in range(20):
        with pytest.raises(InputMismatchError):
            enrollment.start_enrollment(
                enrollment.NoticeFields(
                    f"{40000000 + n:08d}", "ZZ99999999", "ZZ99999", "2026", "001", "x@example.jp"
                ),
                ip_address="198.51.100.7",
            )
    with pytest.raises(LockedError) as refused:
        enrollment.start_enrollment(
            enrollment.NoticeFields(**enrollment_fields(make_notice())), ip_address="198.51.100.7"
        )
    lock = InputLock.objects.get(kind="ip_address")
    assert lock.value == "198.51.100.7" and refused.value.locked_until == lock.locked_until


def test_r03_the_lock_page_keeps_its_text_and_knows_when_the_lock_ends(client, settings):
    notice = make_notice()
    for _ in range(settings.KIHONET_INPUT_LOCK_MAX_FAILURES):
        client.post(reverse("issuance:enroll"), enrollment_fields(notice, year="1999"))
    response = client.post(reverse("issuance:enroll"), enrollment_fields(notice))
    html = response.content.decode()
    lock = InputLock.objects.get()
    assert f"ステータスコード：{LockedError.status_code}" in html
    assert "入力誤りが続いたため、お手続きを一時的に停止しています。" in html  # the page's own text
    assert response.context["error"].locked_until == lock.locked_until
    assert f"{timezone.localtime(lock.locked_until):%-m月%-d日 %H:%M}以降" in html


def test_a_match_does_not_count_against_the_limits(settings):
    """Starting again (キャンセル on the confirmation, R04) is no mismatch."""
    notice = make_notice()
    for _ in range(settings.KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES + 5):
        assert start(notice)
    assert not InputLock.objects.exists()


def test_lifting_a_lock_lets_the_customer_in_again(admin_user):
    from issuance import audit
    from issuance.services.lockout import lift_lock

    notice = make_notice()
    lock_out(notice, branch_number="009")
    lift_lock(InputLock.objects.get(), actor=audit.Actor.staff_user(admin_user, "127.0.0.1"))
    assert start(notice)


def test_the_api_takes_no_cookies_and_forms_need_csrf():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    notice = make_notice()
    assert strict.post(reverse("issuance:enroll"), enrollment_fields(notice)).status_code == 403
    status, _ = post_json(strict, "/api/v1/enrollments", enrollment_fields(notice))
    assert status == 201
    assert "sessionid" not in strict.cookies


# --- No 500 for bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        b"\xff\xfe",
        json.dumps({"kihonet_code": 12345678}),
        json.dumps({}),
        json.dumps({"csr": None}),
        b"{}" + b" " * 70000,
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/enrollments",
        "/api/v1/enrollments/nope/confirm",
        "/api/v1/enrollments/nope/certificate",
        "/api/v1/renewals/challenge",
        "/api/v1/renewals",
    ],
)
def test_bad_input_gets_a_4xx_with_a_message_never_a_500(client, issuing_ca, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert 400 <= response.status_code < 500
    payload = response.json()
    assert payload["status_code"] and payload["message"]


def test_get_on_the_api_is_refused_cleanly(client):
    assert client.get("/api/v1/enrollments").status_code == 405


def test_openapi_document_describes_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/v1/enrollments",
        "/api/v1/enrollments/{token}/confirm",
        "/api/v1/enrollments/{token}/certificate",
        "/api/v1/renewals/challenge",
        "/api/v1/renewals",
        "/api/v1/certificates/{serial}/status",
        "/api/v1/certificates/{serial}/renewal-info",
        "/api/v1/certificates/{serial}/auto-renewal",
    }


# --- Two requests at once -----------------------------------------------------------------------


def run_together(*calls):
    """Runs the calls in threads released together; their results (or errors) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_token", [True, False], ids=["same-token", "same-notice"])
def test_two_requests_at_once_give_one_certificate(postgres, settings, tmp_path, same_token):
    from issuance import ca

    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "race"
    ca.reset()
    ca.create()
    for _ in range(5):
        notice = make_notice()
        tokens = [start(notice)] * 2 if same_token else [start(notice), start(notice)]
        for token in tokens:
            enrollment.confirm_email(token, ip_address=None)
        # The keys and CSRs are made before the barrier: generating one takes longer than a
        # request, and made inside the threads they would let the first one finish alone.
        csrs = [make_csr()[1] for _ in tokens]
        results = run_together(
            *[
                (lambda t=t, c=c: enrollment.complete_enrollment(t, c, ip_address=None))
                for t, c in zip(tokens, csrs, strict=True)
            ]
        )
        issued = [r for r in results if isinstance(r, Certificate)]
        refused = [r for r in results if isinstance(r, IssuedForAnotherKeyError | NoticeUsedError)]
        assert (len(issued), len(refused)) == (1, 1), results
        assert Certificate.objects.filter(notice=notice).count() == 1
    ca.reset()
