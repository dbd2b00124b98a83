"""Creates a back-office account: a desk, a role, a password and the TOTP second factor."""

from getpass import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import audit, roles
from issuance.models import ServiceDesk, StaffProfile

ROLES = {"clerk": roles.CLERK, "supervisor": roles.SUPERVISOR}


class Command(BaseCommand):
    help = (
        "Creates a staff account of a desk with a role and a TOTP device, and prints the "
        "otpauth:// URI to add to the authenticator app."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLES), default="clerk")
        parser.add_argument("--desk", default="", help="the desk's name (照会先); empty for none")
        parser.add_argument("--password", default="", help="asked for when not given")

    @transaction.atomic
    def handle(self, *args, username: str, role: str, desk: str, password: str, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"{username} exists already.")
        service_desk = self._desk(desk)
        password = password or getpass("Password: ")
        user = User(username=username, is_staff=True)
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=ROLES[role]))
        StaffProfile.objects.create(user=user, desk=service_desk)
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
        audit.record(
            audit.Actor.system("create_staff"),
            "staff_created",
            detail={"username": username, "role": role, "desk": desk},
        )
        self.stdout.write(f"{username}: {ROLES[role]} / {service_desk or '-'}")
        self.stdout.write(f"TOTP: {device.config_url}")

    def _desk(self, name: str) -> ServiceDesk | None:
        if not name:
            return None
        try:
            return ServiceDesk.objects.get(name=name)
        except ServiceDesk.DoesNotExist as error:
            raise CommandError(f"No desk named {name}.") from error
