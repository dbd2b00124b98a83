"""Staff accounts: a back-office account with its role, desk and second factor (R15), audited."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import audit, roles
from issuance.models import ServiceDesk, StaffProfile

# The roles an account is made with: its name for operators, and the group (or 管理者).
ROLES = {"clerk": roles.CLERK, "supervisor": roles.SUPERVISOR, "superuser": "管理者"}


def desk_list() -> str:
    names = list(ServiceDesk.objects.order_by("name").values_list("name", flat=True))
    return "照会先は次のいずれかです：" + "、".join(names)


def _desk(name: str) -> ServiceDesk | None:
    if not name:
        return None
    try:
        return ServiceDesk.objects.get(name=name)
    except ServiceDesk.DoesNotExist as error:
        raise ValidationError(f"照会先「{name}」はありません。{desk_list()}") from error


def check_account(username: str, role: str, desk: str) -> ServiceDesk | None:
    """Refuses an unknown role, a username in use, an unknown desk or a clerk without a desk
    (``ValidationError`` in Japanese); returns the desk. ``create_staff`` checks it too: a
    caller asks it first only to refuse before asking for the password."""
    if role not in ROLES:
        raise ValidationError(
            f"役割「{role}」はありません。次のいずれかを指定してください："
            + "、".join(f"{key}（{name}）" for key, name in ROLES.items())
        )
    if get_user_model().objects.filter(username=username).exists():
        raise ValidationError(f"ユーザー名「{username}」はすでに使われています。")
    service_desk = _desk(desk)
    if role == "clerk" and service_desk is None:
        raise ValidationError("窓口担当者には照会先（--desk）が必要です。" + desk_list())
    return service_desk


@transaction.atomic
def create_staff(
    *,
    username: str,
    role: str,
    desk: str,
    password: str,
    last_name: str = "",
    first_name: str = "",
    actor: audit.Actor,
) -> TOTPDevice:
    """Creates the account, its profile and its confirmed TOTP device with the
    ``staff_created`` event, all or nothing; returns the device (its ``config_url`` is what
    the authenticator app scans). Refusals are ``ValidationError`` in Japanese."""
    service_desk = check_account(username, role, desk)
    user = get_user_model()(
        username=username,
        is_staff=True,
        is_superuser=role == "superuser",
        last_name=last_name,
        first_name=first_name,
    )
    validate_password(password, user)
    user.set_password(password)
    user.save()
    if role != "superuser":
        user.groups.add(Group.objects.get(name=ROLES[role]))
    StaffProfile.objects.create(user=user, desk=service_desk)
    device = TOTPDevice.objects.create(user=user, name="認証アプリ", confirmed=True)
    audit.record(actor, "staff_created", detail={"username": username, "role": role, "desk": desk})
    return device
