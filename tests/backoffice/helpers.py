"""Staff accounts for the back-office tests: a desk, a role, and a verified TOTP device."""

from __future__ import annotations

from itertools import count

from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import roles
from issuance.models import ServiceDesk, StaffProfile

PASSWORD = "correct horse battery staple 7"
_numbers = count(1)


def make_staff(role: str | None = roles.CLERK, desk: ServiceDesk | None = None, **fields) -> User:
    fields.setdefault("username", f"staff{next(_numbers)}")
    user = User.objects.create_user(password=PASSWORD, is_staff=True, **fields)
    if role:
        user.groups.add(Group.objects.get(name=role))
    if desk is not None:
        StaffProfile.objects.create(user=user, desk=desk)
    TOTPDevice.objects.create(user=user, name="認証アプリ", confirmed=True)
    return user


def totp_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user)


def current_code(user: User) -> str:
    """The 6-digit code the staff member's authenticator app shows now."""
    device = totp_device(user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def otp_verify(client: Client, user: User) -> Client:
    """A signed-in, second-factor-verified session (as after the sign-in page)."""
    device = TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="認証アプリ", confirmed=True
    )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def staff_client(user: User) -> Client:
    return otp_verify(Client(), user)


def desk(name: str) -> ServiceDesk:
    return ServiceDesk.objects.get(name=name)
