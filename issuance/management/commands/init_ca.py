from django.core.management.base import BaseCommand, CommandError

from issuance import audit, ca
from issuance.pki.keys import DEFAULT_KEY_TYPE
from issuance.services.crl import publish_crl

KEY_TYPES = ["ec-p256", "ec-p384", "rsa-3072"]


class Command(BaseCommand):
    help = "Creates the root and the issuing CA once (never overwrites), then the first CRL."

    def add_arguments(self, parser):
        parser.add_argument("--key-type", choices=KEY_TYPES, default=DEFAULT_KEY_TYPE)
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing, successfully, when a CA exists already (for set-up scripts)",
        )

    def handle(self, *args, key_type: str, if_missing: bool, **options):
        if ca.exists() and if_missing:
            self.stdout.write(f"The CA exists already in {ca.ca_dir()}.")
            return
        try:
            material = ca.create(key_type)
        except ca.CaUnavailableError as error:
            raise CommandError(str(error)) from error
        audit.record(
            audit.Actor.system("init_ca"),
            "ca_created",
            detail={
                "key_type": key_type,
                "subject": material.issuing_cert.subject.rfc4514_string(),
            },
        )
        publish_crl()
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the root and the issuing CA ({key_type}) in {ca.ca_dir()}."
            )
        )
