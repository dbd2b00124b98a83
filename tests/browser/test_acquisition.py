"""New acquisition (新規取得) in headless Chromium, the manual's steps ② to ⑧, with the real
client tool making the key on "the customer's PC" (R01, R03, R04, R06, R13, R15, R16)."""

from __future__ import annotations

import re
import subprocess
from datetime import date

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.utils import timezone
from playwright.sync_api import expect

from issuance.models import Certificate, Notice
from issuance.pki.profile import add_years
from tests.factories import make_customer, make_notice, make_user

from .conftest import http_get

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

R04_TEXT = (
    "Eメールアドレスが正しければ[OK]を、正しくない場合には[キャンセル]をクリックして新規取得ページ上の"
    "Eメールアドレスを修正してください。Eメールアドレスが間違っていると、クライアント証明書の取得ができなくなります。"
)
R06_DONE = "クライアント証明書の作成が完了しました"
R06_LOGIN = "「企業保険インターネットサービス」にログイン可能になったことをご確認ください。"
HINTS = {
    "kihonet_code": "（「ユーザーIDのお知らせ」に記載の企保ネットコードを半角数字でご入力ください。）",
    "management_number": "（「ユーザーIDのお知らせ」に記載の管理番号を半角英数字でご入力ください。）",
    "user_id": "（「ユーザーIDのお知らせ」に記載のユーザーIDを半角英数字でご入力ください。）",
    "year": "（「ユーザーIDのお知らせ」の右上に記載されている発行年を西暦にて半角数字でご入力ください。）",
    "branch_number": "（新規取得：「001」と半角数字でご入力ください。 再発行：再発行完了の通知文書に印字されている枝番を半角数字でご入力ください。）",
    "email": "（3年後の更新時にはこのアドレス宛に案内を送信します。）",
}
LABELS = {
    "kihonet_code": "企保ネットコード",
    "management_number": "管理番号",
    "user_id": "ユーザーID",
    "year": "年",
    "branch_number": "枝番",
    "email": "Eメールアドレス",
}
# What the customer types, copied from the letter: full-width characters, stray spaces.
TYPED = {
    "kihonet_code": "１２３４５６７８",
    "management_number": " ＡＢ１２ ３４５６７８",
    "user_id": "ＫＮ０１２３４ ",
    "year": "２０２６",
    "branch_number": " ００１",
    "email": " Taro.Yamada@Example.JP ",
}
# What the service reads from it (R01: half-width).
NORMALISED = {
    "kihonet_code": "12345678",
    "management_number": "AB12345678",
    "user_id": "KN01234",
    "year": "2026",
    "branch_number": "001",
    "email": "taro.yamada@example.jp",
}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def japanese_date(moment) -> str:
    local = timezone.localtime(moment)
    return f"{local.year}年{local.month}月{local.day}日"


def new_customer_notice(**customer) -> Notice:
    customer = make_customer(kihonet_code=NORMALISED["kihonet_code"], **customer)
    user = make_user(
        customer,
        user_id=NORMALISED["user_id"],
        management_number=NORMALISED["management_number"],
        email=NORMALISED["email"],
    )
    return make_notice(user, issued_on=date(2026, 4, 1))


def fill_form(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f"#id_{name}")
        field.fill("")
        field.press_sequentially(value)


def openssl_verify(tmp_path, chain_pem: bytes, certificate: x509.Certificate) -> str:
    """``openssl verify -purpose sslclient``: the root trusted, the issuing CA untrusted."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    roots = [c for c in chain if c.subject == c.issuer]
    intermediates = [c for c in chain if c.subject != c.issuer]
    assert len(roots) == 1 and intermediates

    def write(name, certs):
        path = tmp_path / name
        path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        return str(path)

    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            "sslclient",
            "-x509_strict",
            "-CAfile",
            write("root.pem", roots),
            "-untrusted",
            write("issuing.pem", intermediates),
            write("client.pem", [certificate]),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_r01_r04_r06_r13_acquisition_journey_in_chromium(
    site, client_tool, page, screenshot, tmp_path
):
    """R13 tool status on the home page, R01 six fields with the manual's hints (full-width
    input accepted), R04 e-mail confirmation with キャンセル keeping the values, R06 completion;
    the key made by the real client tool, its PKCS#12 opens and the certificate verifies with
    ``openssl verify -purpose sslclient`` against ``/pki/ca.pem``."""
    notice = new_customer_notice()

    # ② the home page: the client tool is running (R13).
    page.goto(site("/"))
    expect(page.locator("#client-tool")).to_have_attribute("data-state", "ready")
    status = page.locator("#agent-status")
    expect(status).to_contain_text("受付を開始しました。")
    expect(status).to_contain_text("証明書取得クライアントツールが起動しています")
    expect(page.locator("#agent-howto")).to_be_hidden()
    screenshot(page, "01-home")

    # ⑤ → ⑥ the form.
    page.get_by_role("link", name="クライアント証明書の新規取得").click()
    page.wait_for_url(site("/enroll/"))
    form = page.locator("form")
    expect(form.locator("input:not([type=hidden])")).to_have_count(6)
    for name, hint in HINTS.items():  # R01: the manual's hint beside each field
        wrapper = page.locator(f"#div_id_{name}")
        expect(wrapper.locator("label")).to_contain_text(LABELS[name])
        expect(wrapper).to_contain_text(hint)
        expect(wrapper.get_by_text(hint, exact=True)).to_be_visible()
        assert (
            page.locator(f"#id_{name}").get_attribute("aria-describedby") == f"id_{name}_helptext"
        )
    fill_form(page, TYPED)
    screenshot(page, "02-form-typed")

    # ⑦ the confirmation: the address and the R04 text.
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/confirm/"))
    expect(page.locator("#confirm-email")).to_have_text(NORMALISED["email"])
    assert squeeze(R04_TEXT) in squeeze(page.locator("main").inner_text())
    screenshot(page, "03-confirm")

    # キャンセル goes back to the form with the values kept (half-width now).
    page.get_by_role("link", name="キャンセル").click()
    page.wait_for_url(site("/enroll/"))
    for name, value in NORMALISED.items():
        expect(page.locator(f"#id_{name}")).to_have_value(value)
    screenshot(page, "04-form-after-cancel")

    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/confirm/"))
    expect(page.locator("#confirm-email")).to_have_text(NORMALISED["email"])

    # OK: the issue page asks the client tool; hold its request to see the page first.
    held = []

    def hold(route) -> None:
        held.append(route)

    page.route(f"http://127.0.0.1:{site.tool_port}/enroll", hold)
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(site("/enroll/issue/"))
    for _ in range(200):  # the page's script calls the tool at once
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the issue page did not call the client tool"
    expect(page.locator("#issue-status")).to_contain_text("鍵を作成し")
    screenshot(page, "05-issue")
    held[0].continue_()

    # ⑧ completion (R06) with the serial and the expiry three years on.
    page.wait_for_url(site("/enroll/complete/"))
    main = page.locator("main")
    expect(main.get_by_role("heading", name=R06_DONE)).to_be_visible()
    expect(main).to_contain_text(R06_DONE + "。")
    expect(main).to_contain_text(R06_LOGIN)
    screenshot(page, "06-complete")

    certificate = Certificate.objects.get(notice=notice)
    serial = page.locator("#serial").inner_text().strip()
    assert serial == certificate.serial
    expiry = japanese_date(certificate.not_after)
    assert expiry == japanese_date(add_years(timezone.now(), 3))  # e.g. 2029年11月28日
    assert re.fullmatch(
        r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}", page.locator("#expiry").inner_text()
    )
    expect(page.locator("#expiry")).to_contain_text(expiry)
    notice = Notice.objects.select_related("user__customer").get(pk=notice.pk)
    assert notice.is_used and notice.user.customer.started_using

    # The client tool holds it: `list`, and the PKCS#12 opens with the passphrase.
    listed = client_tool.run("list")
    assert listed.returncode == 0, listed.stderr
    assert serial in listed.stdout
    assert f"ユーザーID：{NORMALISED['user_id']}" in listed.stdout
    assert f"管理番号：{NORMALISED['management_number']}" in listed.stdout
    assert f"有効期限：{expiry}" in listed.stdout
    p12 = (client_tool.store / f"{serial}.p12").read_bytes()
    key, held_cert, chain = pkcs12.load_key_and_certificates(p12, client_tool.passphrase.encode())
    assert held_cert.serial_number == int(serial, 16)
    assert held_cert.public_bytes(serialization.Encoding.PEM).decode() == certificate.pem
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == held_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(chain) == 2
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(p12, b"wrong passphrase")

    # …and the certificate verifies against the chain the site publishes.
    out = openssl_verify(tmp_path, http_get(site("/pki/ca.pem")), held_cert)
    assert out.strip().endswith(": OK")


def test_r03_r15_r16_input_error_and_used_notice_in_chromium(site, page, screenshot):
    """R03: a mismatch shows 「入力情報エラー」「ステータスコード：3420」 and names no field.
    R16 + R15: a notice already used asks for a reissue and names the desks of the customer's
    product line with their phones and hours."""
    notice = new_customer_notice(product_lines=("団体信用生命保険",), started_using=True)
    page.goto(site("/enroll/"))

    # R03: the year is wrong, nothing says so: the page reads the same when the user ID is
    # wrong too. It helps: the year-end rule (R02) and the desks to call (R15).
    fill_form(page, {**NORMALISED, "year": "2024"})
    page.get_by_role("button", name="OK").click()
    error = page.locator("#enroll-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("入力情報エラー")
    expect(error).to_contain_text("ステータスコード：3420")
    expect(error).to_contain_text("発行年の翌年（2025）の入力をお試しください")
    expect(error).to_contain_text("団体信用生命保険：団体保険課 0120-338-688")
    expect(error).to_contain_text("受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）")
    expect(page.locator(".is-invalid")).to_have_count(0)
    expect(page.locator(".invalid-feedback")).to_have_count(0)
    wrong_year = error.inner_text()
    screenshot(page, "01-input-error-3420")
    notice.user.__class__.objects.filter(pk=notice.user.pk).update(user_id="KN09999")
    fill_form(page, {**NORMALISED, "year": "2024"})
    page.get_by_role("button", name="OK").click()
    expect(error).to_contain_text("ステータスコード：3420")
    assert error.inner_text() == wrong_year
    notice.user.__class__.objects.filter(pk=notice.user.pk).update(user_id=NORMALISED["user_id"])

    # R16: the notice is used up; the reissue message with the desks to call (R15).
    Notice.objects.filter(pk=notice.pk).update(used_at=timezone.now())
    fill_form(page, NORMALISED)
    page.get_by_role("button", name="OK").click()
    expect(error).to_contain_text("クライアント証明書の再発行手続きが必要です")
    expect(error).to_contain_text("ステータスコード：3440")
    expect(error).to_contain_text("団体信用生命保険：団体保険課 0120-338-688")
    expect(error).to_contain_text("団体信用生命保険：法人サービスセンター 0120-563-928")
    expect(error).to_contain_text("受付時間：月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）")
    assert "0120-150-012" not in error.inner_text()  # not the before-start desk any more
    screenshot(page, "02-used-notice-reissue")
