"""`create_staff`: an operator makes a desk's account with its role and second factor (R15)."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


def test_r15_create_staff_gives_a_desk_a_clerk_with_totp():
    out = StringIO()
    call_command(
        "create_staff",
        "nagoya1",
        "--role",
        "clerk",
        "--desk",
        "名古屋法人サービス課",
        "--password",
        "a long enough passphrase 42",
        stdout=out,
    )
    user = get_user_model().objects.get(username="nagoya1")
    assert user.is_staff and not user.is_superuser
    assert user.staff_profile.desk.name == "名古屋法人サービス課"
    assert [g.name for g in user.groups.all()] == ["窓口担当者"]
    assert TOTPDevice.objects.get(user=user).confirmed
    assert "otpauth://totp/" in out.getvalue()


def test_create_staff_refuses_an_unknown_desk_and_a_weak_password():
    with pytest.raises(CommandError, match="照会先「架空課」はありません") as raised:
        call_command(
            "create_staff", "x", "--desk", "架空課", "--password", "a long enough passphrase 42"
        )
    assert "名古屋法人サービス課" in str(raised.value)  # the valid desks are listed
    with pytest.raises(CommandError):
        call_command("create_staff", "y", "--role", "supervisor", "--password", "123")
    assert not get_user_model().objects.filter(username__in=["x", "y"]).exists()


def test_create_staff_names_the_valid_roles_and_needs_a_desk_for_a_clerk():
    with pytest.raises(CommandError, match="役割「admin」はありません") as raised:
        call_command("create_staff", "z", "--role", "admin", "--password", "a long passphrase 42")
    assert "superuser" in str(raised.value) and "supervisor" in str(raised.value)
    with pytest.raises(CommandError, match="照会先（--desk）が必要です") as raised:
        call_command("create_staff", "z", "--password", "a long passphrase 42")
    assert "団体保険課" in str(raised.value)
    with pytest.raises(CommandError, match="すでに使われています"):
        call_command("create_staff", "w", "--role", "supervisor", "--password", "a long pass 42")
        call_command("create_staff", "w", "--role", "supervisor", "--password", "a long pass 42")


def test_the_first_superuser_signs_in_with_password_and_the_code_of_the_printed_qr(client):
    """README's set-up: ``create_staff admin --role superuser`` is enough to sign in."""
    from django_otp.oath import TOTP

    out = StringIO()
    call_command(
        "create_staff",
        "admin",
        "--role",
        "superuser",
        "--last-name",
        "山田",
        "--first-name",
        "花子",
        "--password",
        "a long enough passphrase 42",
        stdout=out,
    )
    printed = out.getvalue()
    assert "otpauth://totp/" in printed and "█" in printed  # the URI and the QR code
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    device = TOTPDevice.objects.get(user=user)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "admin",
            "password": "a long enough passphrase 42",
            "otp_token": f"{code:06d}",
            "next": "/admin/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    dashboard = client.get("/admin/").content.decode()
    assert "山田 花子" in dashboard  # greeted by name as entered


def test_r15_the_staff_service_writes_the_account_and_its_event_together():
    """``issuance.services.staff.create_staff`` is the one writer: the account, its TOTP device
    and the ``staff_created`` event, or none of them when the password is refused."""
    from django.core.exceptions import ValidationError

    from issuance import audit
    from issuance.models import AuditEvent
    from issuance.services import staff

    actor = audit.Actor.system("test")
    with pytest.raises(ValidationError):
        staff.create_staff(username="weak", role="supervisor", desk="", password="123", actor=actor)
    assert not get_user_model().objects.filter(username="weak").exists()
    assert not AuditEvent.objects.filter(action="staff_created").exists()
    device = staff.create_staff(
        username="kyoto1",
        role="clerk",
        desk="名古屋法人サービス課",
        password="a long enough passphrase 42",
        actor=actor,
    )
    assert device.user.username == "kyoto1" and device.confirmed
    event = AuditEvent.objects.get(action="staff_created")
    assert event.detail == {"username": "kyoto1", "role": "clerk", "desk": "名古屋法人サービス課"}
