"""Creates a back-office account: a role, a desk, a password and the TOTP second factor.

The first account of an installation is ``create_staff NAME --role superuser``: it can sign in
at once with its password and the 6-digit code of the authenticator app that scanned the QR
code printed here."""

import io
from getpass import getpass

import qrcode
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import audit, roles
from issuance.models import ServiceDesk, StaffProfile

ROLES = {"clerk": roles.CLERK, "supervisor": roles.SUPERVISOR, "superuser": "管理者"}


def terminal_qr(data: str) -> str:
    """``data`` as a QR code of text blocks, dark on a light terminal or light on a dark one."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


class Command(BaseCommand):
    help = (
        "職員アカウントを作成します（役割、照会先、パスワード、認証アプリ（TOTP））。"
        "認証アプリに登録する otpauth:// URI と QR コードを表示します。"
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role", default="clerk", help="clerk（窓口担当者）、supervisor、superuser（管理者）"
        )
        parser.add_argument("--desk", default="", help="照会先の名前（空欄は所属なし）")
        parser.add_argument("--password", default="", help="省略すると入力を求めます")
        parser.add_argument("--last-name", default="", help="姓（画面の「ようこそ」に表示）")
        parser.add_argument("--first-name", default="", help="名")

    @transaction.atomic
    def handle(self, *args, username: str, role: str, desk: str, password: str, **options):
        User = get_user_model()
        if role not in ROLES:
            raise CommandError(
                f"役割「{role}」はありません。次のいずれかを指定してください："
                + "、".join(f"{key}（{name}）" for key, name in ROLES.items())
            )
        if User.objects.filter(username=username).exists():
            raise CommandError(f"ユーザー名「{username}」はすでに使われています。")
        service_desk = self._desk(desk)
        if role == "clerk" and service_desk is None:
            raise CommandError("窓口担当者には照会先（--desk）が必要です。" + self._desk_list())
        password = password or getpass("パスワード: ")
        user = User(
            username=username,
            is_staff=True,
            is_superuser=role == "superuser",
            last_name=options["last_name"],
            first_name=options["first_name"],
        )
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        user.set_password(password)
        user.save()
        if role != "superuser":
            user.groups.add(Group.objects.get(name=ROLES[role]))
        StaffProfile.objects.create(user=user, desk=service_desk)
        device = TOTPDevice.objects.create(user=user, name="認証アプリ", confirmed=True)
        audit.record(
            audit.Actor.system("create_staff"),
            "staff_created",
            detail={"username": username, "role": role, "desk": desk},
        )
        self.stdout.write(f"{username}: {ROLES[role]} / {service_desk or '照会先なし'}")
        self.stdout.write("認証アプリ（Google Authenticator など）でこの QR コードを読み取るか、")
        self.stdout.write(
            "次の URI を登録してください。サインインではパスワードと6桁の認証コードを入力します。"
        )
        self.stdout.write(f"TOTP: {device.config_url}")
        self.stdout.write(terminal_qr(device.config_url))

    def _desk_list(self) -> str:
        names = list(ServiceDesk.objects.order_by("name").values_list("name", flat=True))
        return "照会先は次のいずれかです：" + "、".join(names)

    def _desk(self, name: str) -> ServiceDesk | None:
        if not name:
            return None
        try:
            return ServiceDesk.objects.get(name=name)
        except ServiceDesk.DoesNotExist as error:
            raise CommandError(f"照会先「{name}」はありません。{self._desk_list()}") from error
