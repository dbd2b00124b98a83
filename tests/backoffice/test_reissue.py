"""R16 reissue and R05 e-mail change, through the service and through the desk's screen."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from issuance import audit, roles
from issuance.errors import NoticeUsedError, ReissueError
from issuance.models import AuditEvent, Certificate, Notice, ReissueRecord
from issuance.services import enrollment
from issuance.services.reissue import reissue_notice
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.csr import make_csr
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db
LINE = "総合福祉団体定期保険"  # 団体保険課 and 法人サービスセンター


@pytest.fixture
def customer_user():
    user = make_user(make_customer(product_lines=(LINE,), started_using=True))
    make_notice(user, used_at="2026-04-02T10:00:00+09:00")
    return user


@pytest.fixture
def clerk(db):
    return make_staff(roles.CLERK, desk("団体保険課"))


def actor_of(staff) -> audit.Actor:
    return audit.Actor.staff_user(staff, "192.0.2.10")


def test_r16_reissue_creates_the_next_branch_numbers(customer_user, clerk):
    first = reissue_notice(
        user=customer_user, reason="pc_change", actor=actor_of(clerk), today=date(2026, 6, 1)
    )
    second = reissue_notice(
        user=customer_user,
        reason="other",
        note="トナー交換",
        actor=actor_of(clerk),
        today=date(2026, 6, 2),
    )
    assert [first.new_notice.branch_number, second.new_notice.branch_number] == ["002", "003"]
    notice = second.new_notice
    assert notice.kind == Notice.Kind.REISSUE
    assert notice.issued_on == date(2026, 6, 2)
    assert (notice.printed_year, notice.registration_year) == (2026, 2026)
    assert notice.email == customer_user.email
    assert second.staff == clerk


def test_r16_r02_a_reissue_on_the_last_business_day_of_december_registers_next_year(
    customer_user, clerk
):
    record = reissue_notice(
        user=customer_user, reason="pc_change", actor=actor_of(clerk), today=date(2026, 12, 30)
    )
    assert (record.new_notice.printed_year, record.new_notice.registration_year) == (2026, 2027)


def test_r05_an_email_change_puts_the_new_address_on_the_notice(customer_user, clerk):
    record = reissue_notice(
        user=customer_user,
        reason="email_change",
        new_email="New.Address@Example.JP",
        actor=actor_of(clerk),
    )
    assert record.new_notice.email == "new.address@example.jp"
    assert record.new_email == "new.address@example.jp"
    customer_user.refresh_from_db()
    assert customer_user.email != "new.address@example.jp"  # changes when acquired (R05)


def test_r05_an_email_change_needs_a_different_address(customer_user, clerk):
    for address in ("", customer_user.email.upper()):
        with pytest.raises(ReissueError):
            reissue_notice(
                user=customer_user, reason="email_change", new_email=address, actor=actor_of(clerk)
            )
    assert not Notice.objects.filter(user=customer_user, kind="reissue").exists()


def test_r16_a_lost_pc_revokes_the_valid_certificates_at_once(
    customer_user, clerk, django_capture_on_commit_callbacks, issuing_ca
):
    valid = make_certificate(customer_user)
    with django_capture_on_commit_callbacks(execute=True):
        reissue_notice(user=customer_user, reason="pc_lost", actor=actor_of(clerk))
    valid.refresh_from_db()
    assert valid.is_revoked
    assert valid.revocation_reason == "keyCompromise"


def test_r16_a_pc_change_keeps_the_old_certificate_until_acquisition(customer_user, clerk):
    old = make_certificate(customer_user)
    reissue_notice(user=customer_user, reason="pc_change", actor=actor_of(clerk))
    old.refresh_from_db()
    assert old.revoked_at is None


def acquire(notice: Notice, year: int | None = None) -> Certificate:
    fields = enrollment.NoticeFields(
        kihonet_code=notice.user.customer.kihonet_code,
        management_number=notice.user.management_number,
        user_id=notice.user.user_id,
        year=str(year or notice.registration_year),
        branch_number=notice.branch_number,
        email=notice.email,
    )
    _enrollment, token = enrollment.start_enrollment(fields, ip_address="198.51.100.7")
    enrollment.confirm_email(token, ip_address="198.51.100.7")
    return enrollment.complete_enrollment(token, make_csr()[1], ip_address="198.51.100.7")


@pytest.mark.parametrize("reason", ["pc_change", "email_change"])
def test_r16_r05_acquiring_with_the_reissue_notice_supersedes_the_old_certificate(
    issuing_ca, customer_user, clerk, reason
):
    old_notice = Notice.objects.get(user=customer_user)
    Notice.objects.filter(pk=old_notice.pk).update(used_at=None)
    old_notice.refresh_from_db()
    old = acquire(old_notice)
    record = reissue_notice(
        user=customer_user,
        reason=reason,
        actor=actor_of(clerk),
        new_email="changed@example.jp" if reason == "email_change" else "",
    )
    old.refresh_from_db()
    assert old.revoked_at is None  # the customer keeps access until the new acquisition
    with pytest.raises(NoticeUsedError):  # the old notice is replaced (R16)
        acquire(Notice.objects.get(pk=old_notice.pk))
    new = acquire(record.new_notice)
    old.refresh_from_db()
    assert new.notice == record.new_notice and new.revoked_at is None
    assert old.is_revoked and old.revocation_reason == "superseded"
    customer_user.refresh_from_db()
    if reason == "email_change":
        assert new.email == customer_user.email == "changed@example.jp"


def test_r16_a_reissue_is_audited_with_staff_address_and_reason(customer_user, clerk):
    reissue_notice(
        user=customer_user, reason="other", note="お客様よりお電話", actor=actor_of(clerk)
    )
    event = AuditEvent.objects.get(action="notice_reissued")
    assert (event.staff, event.ip_address, event.reason) == (
        clerk,
        "192.0.2.10",
        "お客様よりお電話",
    )
    assert event.kihonet_user == customer_user
    assert event.detail["branch_number"] == "002"


def test_r16_reissue_needs_the_permission_and_the_desk(customer_user):
    no_role = make_staff(None, desk("団体保険課"))
    other_desk = make_staff(roles.CLERK, desk("福岡法人サービス課"))
    for staff in (no_role, other_desk):
        with pytest.raises(PermissionDenied):
            reissue_notice(user=customer_user, reason="pc_change", actor=actor_of(staff))
    with pytest.raises(PermissionDenied):
        reissue_notice(
            user=customer_user, reason="pc_change", actor=audit.Actor.customer("x", "203.0.113.1")
        )
    assert not ReissueRecord.objects.exists()


@pytest.mark.parametrize("note", ["", "   "])
def test_r16_other_needs_a_note_in_the_service_itself(customer_user, clerk, note):
    """The rule lives in ``reissue_notice``, so every caller (screen, command, script) keeps it."""
    with pytest.raises(ReissueError, match="備考に理由を入力") as raised:
        reissue_notice(user=customer_user, reason="other", note=note, actor=actor_of(clerk))
    assert raised.value.field == "note"
    assert not Notice.objects.filter(user=customer_user, branch_number="002").exists()
    record = reissue_notice(
        user=customer_user, reason="other", note="お客様のご依頼", actor=actor_of(clerk)
    )
    assert record.new_notice.branch_number == "002"


def test_r16_the_screen_shows_the_services_refusal_beside_its_field(customer_user, clerk):
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_reissue", args=[customer_user.pk])
    response = client.post(url, {"reason": "other", "note": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["note"] == [
        "「その他」の場合は備考に理由を入力してください。"
    ]
    response = client.post(url, {"reason": "email_change", "new_email": ""})
    assert response.context["form"].errors["new_email"] == [
        "Eメールアドレスの変更には新しいEメールアドレスが必要です。"
    ]


def test_r16_the_desk_reissues_from_the_users_screen(customer_user, clerk):
    """The form, then the confirmation of what happens to the current certificate; only the
    confirmed POST reissues."""
    certificate = make_certificate(customer_user)
    client = staff_client(clerk)
    url = reverse("admin:issuance_kihonetuser_reissue", args=[customer_user.pk])
    page = client.get(url)
    assert page.status_code == 200 and "再発行理由" in page.content.decode()
    assert "checked" not in page.content.decode().split('name="reason"')[1].split(">")[0]
    response = client.post(url, {"reason": "email_change", "new_email": ""})
    assert response.status_code == 200
    assert "新しいEメールアドレスが必要です" in response.content.decode()
    confirm = client.post(url, {"reason": "pc_change", "note": "新しいPC"})
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "再発行の確認" in text
    assert "新しい枝番" in text and "002" in text and certificate.serial in text
    assert "新しい枝番で証明書を取得した時点で失効します" in text
    assert 'name="confirmed" value="1"' in text
    assert not Notice.objects.filter(user=customer_user, branch_number="002").exists()
    lost = client.post(url, {"reason": "pc_lost"}).content.decode()
    assert "ただちに失効します" in lost
    back = client.post(
        url, {"reason": "pc_change", "note": "新しいPC", "confirmed": "1", "back": "1"}
    )
    assert "確認へ進む" in back.content.decode() and "新しいPC" in back.content.decode()
    assert not Notice.objects.filter(user=customer_user, branch_number="002").exists()
    response = client.post(
        url,
        {"reason": "pc_change", "note": "新しいPC", "confirmed": "1"},
        REMOTE_ADDR="192.0.2.44",
    )
    notice = Notice.objects.get(user=customer_user, branch_number="002")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:issuance_kihonetuser_print", args=[customer_user.pk, notice.pk]
    )
    event = AuditEvent.objects.get(action="notice_reissued")
    assert event.ip_address == "192.0.2.44" and event.staff == clerk
