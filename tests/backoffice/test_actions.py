"""The desk's actions other than reissue: revoke (with confirmation; CRL and OCSP at once),
lift an input lock, print the notices as HTML and PDF; none deletes anything."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from issuance import ca, roles
from issuance.models import AuditEvent, Certificate, InputLock, Notice, ReissueRecord
from issuance.selectors.users import user_overview
from issuance.services.certificates import issue_certificate
from issuance.services.reissue import reissue_notice
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.csr import make_csr
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db
LINE = "団体信用生命保険"  # 団体保険課 and 法人サービスセンター


@pytest.fixture
def customer_user(db):
    user = make_user(make_customer(product_lines=(LINE,), started_using=True))
    make_notice(user)
    return user


def issued(user, issuing_ca) -> Certificate:
    from issuance import audit

    return issue_certificate(
        user=user, csr_data=make_csr()[1], actor=audit.Actor.customer(user.user_id)
    )


def revoke_url(certificate: Certificate) -> str:
    return reverse("admin:issuance_kihonetuser_revoke", args=[certificate.user_id, certificate.pk])


def test_a_clerk_may_not_revoke(customer_user, issuing_ca):
    certificate = issued(customer_user, issuing_ca)
    client = staff_client(make_staff(roles.CLERK, desk("団体保険課")))
    assert client.get(revoke_url(certificate)).status_code == 403
    response = client.post(
        revoke_url(certificate), {"reason": "keyCompromise", "note": "x", "confirm": "on"}
    )
    assert response.status_code == 403
    certificate.refresh_from_db()
    assert certificate.revoked_at is None


def test_revocation_asks_for_confirmation_then_reaches_crl_and_ocsp(
    customer_user, issuing_ca, client, django_capture_on_commit_callbacks
):
    certificate = issued(customer_user, issuing_ca)
    supervisor = staff_client(make_staff(roles.SUPERVISOR))
    page = supervisor.get(revoke_url(certificate))
    assert page.status_code == 200
    assert "失効は取り消せません" in page.content.decode()
    unconfirmed = supervisor.post(
        revoke_url(certificate), {"reason": "keyCompromise", "note": "PC盗難"}
    )
    assert unconfirmed.status_code == 200
    assert Certificate.objects.get(pk=certificate.pk).revoked_at is None

    with django_capture_on_commit_callbacks(execute=True):
        response = supervisor.post(
            revoke_url(certificate),
            {"reason": "keyCompromise", "note": "PC盗難の連絡", "confirm": "on"},
            REMOTE_ADDR="192.0.2.8",
        )
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert certificate.status_at(timezone.now()) == Certificate.Status.REVOKED

    crl = x509.load_der_x509_crl(client.get(reverse("issuance:crl", args=["der"])).content)
    entry = crl.get_revoked_certificate_by_serial_number(int(certificate.serial, 16))
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )

    material = ca.load()
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(
            x509.load_pem_x509_certificate(certificate.pem.encode()),
            material.issuing_cert,
            hashes.SHA1(),
        )
        .build()
    )
    answer = client.post(
        reverse("issuance:ocsp"),
        request.public_bytes(serialization.Encoding.DER),
        content_type="application/ocsp-request",
    )
    assert (
        ocsp.load_der_ocsp_response(answer.content).certificate_status
        == ocsp.OCSPCertStatus.REVOKED
    )

    event = AuditEvent.objects.get(action="certificate_revoked")
    assert event.actor_type == "staff" and event.staff is not None
    assert (event.ip_address, event.reason) == ("192.0.2.8", "PC盗難の連絡")


def make_lock(value: str, **fields) -> InputLock:
    return InputLock.objects.create(
        kind=InputLock.Kind.PERSON,
        value=value,
        locked_until=timezone.now() + timedelta(minutes=30),
        **fields,
    )


def test_a_clerk_lifts_an_input_lock_of_the_desks_customer(customer_user):
    lock = make_lock(customer_user.customer.kihonet_code, user_id=customer_user.user_id)
    clerk = make_staff(roles.CLERK, desk("法人サービスセンター"))
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_lift_lock", args=[customer_user.pk, lock.pk])
    assert client.post(url, {"reason": ""}).status_code == 200  # a reason is required
    response = client.post(url, {"reason": "ご本人確認済み"})
    assert response.status_code == 302
    lock.refresh_from_db()
    assert lock.lifted_at is not None and lock.lifted_by == clerk
    event = AuditEvent.objects.get(action="input_lock_lifted")
    assert event.staff == clerk and event.reason == "ご本人確認済み"
    other = staff_client(make_staff(roles.CLERK, desk("名古屋法人サービス課")))
    assert other.post(url, {"reason": "x"}).status_code == 404


def test_the_user_id_notice_prints_the_six_fields_and_the_year_top_right(customer_user):
    notice = Notice.objects.get(user=customer_user)
    client = staff_client(make_staff(roles.CLERK, desk("団体保険課")))
    response = client.get(
        reverse("admin:issuance_kihonetuser_print", args=[customer_user.pk, notice.pk])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "ユーザーIDのお知らせ" in html and "issuance/notice-print.css" in html
    from django.contrib.staticfiles import finders

    css = open(finders.find("issuance/notice-print.css"), encoding="utf-8").read()
    assert "@page" in css and "size: A4" in css
    for value in (
        customer_user.customer.kihonet_code,
        customer_user.management_number,
        customer_user.user_id,
        str(notice.printed_year),
        "001",
        customer_user.email,
    ):
        assert value in html
    assert 'class="year">2026年' in html  # R01: the issue year, top right
    assert "0120-338-688" in html and "0120-563-928" in html  # the customer's desks (R15)
    assert "月～金曜日 9:00～17:00" in html
    assert AuditEvent.objects.filter(action="notice_printed").count() == 1


def test_r16_the_reissue_notice_is_a_japanese_pdf_with_the_branch_number(customer_user, tmp_path):
    clerk = make_staff(roles.CLERK, desk("団体保険課"))
    from issuance import audit

    record = reissue_notice(
        user=customer_user, reason="pc_change", actor=audit.Actor.staff_user(clerk)
    )
    client = staff_client(clerk)
    response = client.get(
        reverse(
            "admin:issuance_kihonetuser_print_pdf", args=[customer_user.pk, record.new_notice.pk]
        )
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(response.content)
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    assert "CJK" in fonts.stdout  # a Japanese font, embedded
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "再発行完了の通知文書" in text and "002" in text and customer_user.user_id in text
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in pages and "(A4)" in pages


def test_nobody_deletes_certificates_notices_reissues_or_audit_events(admin_user, rf):
    request = rf.get("/")
    for user in (admin_user, make_staff(roles.SUPERVISOR)):
        request.user = user
        for model in (Certificate, Notice, AuditEvent, ReissueRecord):
            assert admin.site._registry[model].has_delete_permission(request) is False


def test_r10_a_clerk_resends_the_renewal_guidance_to_the_registered_address(
    customer_user, mailoutbox
):
    from tests.backoffice.conftest import make_certificate

    certificate = make_certificate(customer_user, days_left=20)
    clerk = make_staff(roles.CLERK, desk("団体保険課"))
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_resend", args=[customer_user.pk, certificate.pk])
    response = client.post(url, {"reason": "メールが届かないとのお電話"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [certificate.email] and "更新" in mail.subject
    assert customer_user.user_id in mail.body
    event = AuditEvent.objects.get(action="reminder_resent")
    assert event.staff == clerk and event.reason == "メールが届かないとのお電話"

    expired = make_certificate(customer_user, days_left=-1)
    url = reverse("admin:issuance_kihonetuser_resend", args=[customer_user.pk, expired.pk])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200 and "再発行" in response.content.decode()
    assert len(mailoutbox) == 1


def test_r10_a_resend_is_recorded_before_the_mail_leaves_and_its_outcome_after(
    customer_user, smtp_server
):
    """Claim then send: the ``reminder_resend_started`` event is there before the SMTP
    server gets the mail, and ``reminder_resent`` with the same Message-ID after it."""
    from tests.backoffice.conftest import make_certificate

    certificate = make_certificate(customer_user, days_left=20)
    clerk = make_staff(roles.CLERK, desk("団体保険課"))
    url = reverse("admin:issuance_kihonetuser_resend", args=[customer_user.pk, certificate.pk])
    response = staff_client(clerk).post(url, {"reason": "届かないとのお電話"})
    assert response.status_code == 302
    started = AuditEvent.objects.get(action="reminder_resend_started")
    resent = AuditEvent.objects.get(action="reminder_resent")
    assert started.pk < resent.pk
    message_id = started.detail["message_id"]
    assert resent.detail["message_id"] == message_id
    assert smtp_server.handler.message_ids() == {message_id: 1}


def test_r10_a_resend_the_smtp_server_refuses_is_recorded_as_failed(customer_user, smtp_server):
    from tests.backoffice.conftest import make_certificate

    certificate = make_certificate(customer_user, days_left=20)
    smtp_server.handler.refusals[certificate.email] = [451]
    clerk = make_staff(roles.CLERK, desk("団体保険課"))
    url = reverse("admin:issuance_kihonetuser_resend", args=[customer_user.pk, certificate.pk])
    response = staff_client(clerk).post(url, {"reason": "届かないとのお電話"})
    assert response.status_code == 200
    assert "メールを送信できませんでした" in response.content.decode()
    assert smtp_server.handler.recipients == [certificate.email]
    assert smtp_server.handler.messages == []
    started = AuditEvent.objects.get(action="reminder_resend_started")
    failed = AuditEvent.objects.get(action="reminder_resend_failed")
    assert failed.detail["message_id"] == started.detail["message_id"]
    assert failed.detail["error"] == "SMTPRecipientsRefused"
    assert not AuditEvent.objects.filter(action="reminder_resent").exists()
    [row] = user_overview(customer_user).reminders
    assert (row.serial, row.status) == (certificate.serial, "failed")


def test_the_lock_of_one_user_is_not_offered_on_a_colleagues_screen(customer_user):
    colleague = make_user(customer_user.customer)
    lock = make_lock(customer_user.customer.kihonet_code, user_id=customer_user.user_id)
    client = staff_client(make_staff(roles.SUPERVISOR))
    page = client.get(reverse("admin:issuance_kihonetuser_change", args=[colleague.pk]))
    assert "ロック中" not in page.content.decode()
    url = reverse("admin:issuance_kihonetuser_lift_lock", args=[colleague.pk, lock.pk])
    assert client.post(url, {"reason": "x"}).status_code == 404


def test_locks_are_lifted_on_the_lock_screen_too_within_the_desk(customer_user):
    """Address locks are on no user's screen: supervisors lift them on the lock screen; a
    clerk lifts the locks of the desk's customers there too, and sees no others."""
    person = make_lock(customer_user.customer.kihonet_code, user_id=customer_user.user_id)
    address = InputLock.objects.create(
        kind=InputLock.Kind.IP_ADDRESS,
        value="198.51.100.9",
        locked_until=timezone.now() + timedelta(minutes=30),
    )
    clerk = staff_client(make_staff(roles.CLERK, desk("法人サービスセンター")))
    listing = clerk.get(reverse("admin:issuance_inputlock_changelist")).content.decode()
    assert customer_user.user_id in listing and "198.51.100.9" not in listing
    assert (
        clerk.post(
            reverse("admin:issuance_inputlock_lift", args=[address.pk]), {"reason": "x"}
        ).status_code
        == 404
    )
    response = clerk.post(
        reverse("admin:issuance_inputlock_lift", args=[person.pk]), {"reason": "ご本人確認済み"}
    )
    assert response.status_code == 302
    supervisor = make_staff(roles.SUPERVISOR)
    response = staff_client(supervisor).post(
        reverse("admin:issuance_inputlock_lift", args=[address.pk]), {"reason": "社内の誤操作"}
    )
    assert response.status_code == 302
    address.refresh_from_db()
    person.refresh_from_db()
    assert address.lifted_by == supervisor and person.lifted_at is not None
    assert AuditEvent.objects.filter(action="input_lock_lifted").count() == 2
