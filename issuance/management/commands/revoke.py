from django.core.management.base import BaseCommand, CommandError

from issuance import audit
from issuance.errors import ServiceError
from issuance.models import Certificate
from issuance.pki.crl import REASONS
from issuance.services.certificates import revoke_certificate

# removeFromCRL belongs to delta CRLs only, never to a revocation.
REVOCATION_REASONS = sorted(set(REASONS) - {"removeFromCRL"})


class Command(BaseCommand):
    help = "Revokes a client certificate by its serial number (hex) with an RFC 5280 reason."

    def add_arguments(self, parser):
        parser.add_argument("serial")
        parser.add_argument("--reason", choices=REVOCATION_REASONS, default="unspecified")
        parser.add_argument("--note", default="", help="why, for the audit log")

    def handle(self, *args, serial: str, reason: str, note: str, **options):
        serial = serial.replace(":", "").upper().lstrip("0")
        certificate = Certificate.objects.filter(serial=serial).first()
        if certificate is None:
            raise CommandError(f"No certificate with serial {serial}.")
        try:
            revoke_certificate(
                certificate, reason=reason, actor=audit.Actor.system("manage.py revoke"), note=note
            )
        except ServiceError as error:
            raise CommandError(str(error.message)) from error
        self.stdout.write(self.style.SUCCESS(f"Revoked {serial} ({reason})."))
