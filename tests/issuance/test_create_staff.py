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
    with pytest.raises(CommandError, match="No desk"):
        call_command(
            "create_staff", "x", "--desk", "架空課", "--password", "a long enough passphrase 42"
        )
    with pytest.raises(CommandError):
        call_command("create_staff", "y", "--password", "123")
    assert not get_user_model().objects.filter(username__in=["x", "y"]).exists()
