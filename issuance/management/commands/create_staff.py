"""Creates a back-office account: a role, a desk, a password and the TOTP second factor.

The first account of an installation is ``create_staff NAME --role superuser``: it can sign in
at once with its password and the 6-digit code of the authenticator app that scanned the QR
code printed here. The account is made by ``issuance.services.staff.create_staff``."""

import io
from getpass import getpass

import qrcode
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from issuance import audit
from issuance.services import staff


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

    def handle(self, *args, username: str, role: str, desk: str, password: str, **options):
        try:
            if not password:
                staff.check_account(username, role, desk)
                password = getpass("パスワード: ")
            device = staff.create_staff(
                username=username,
                role=role,
                desk=desk,
                password=password,
                last_name=options["last_name"],
                first_name=options["first_name"],
                actor=audit.Actor.system("create_staff"),
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(f"{username}: {staff.ROLES[role]} / {desk or '照会先なし'}")
        self.stdout.write("認証アプリ（Google Authenticator など）でこの QR コードを読み取るか、")
        self.stdout.write(
            "次の URI を登録してください。サインインではパスワードと6桁の認証コードを入力します。"
        )
        self.stdout.write(f"TOTP: {device.config_url}")
        self.stdout.write(terminal_qr(device.config_url))
