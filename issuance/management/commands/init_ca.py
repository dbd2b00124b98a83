from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from issuance import audit, ca
from issuance.errors import CaUnavailableServiceError
from issuance.services.ca_setup import create_ca
from issuance.services.ca_setup import fingerprints as ca_fingerprints

KEY_TYPES = ["ec-p256", "ec-p384", "rsa-3072"]


class Command(BaseCommand):
    help = (
        "Creates the root and the issuing CA once (never overwrites), then the first CRL; prints "
        "and audits the keys' and certificates' SHA-256 fingerprints (the key ceremony record). "
        "With --keystore pkcs11 the keys are generated inside the token; its PIN comes from "
        "KIHONET_CA_PKCS11_PIN_FILE or KIHONET_CA_PKCS11_PIN, never from the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--key-type",
            choices=KEY_TYPES,
            default=None,
            help="the CA keys' type (default: KIHONET_CA_KEY_TYPE)",
        )
        parser.add_argument(
            "--keystore",
            choices=ca.KEYSTORES,
            default=None,
            help="where the keys are made and kept (default: KIHONET_CA_KEYSTORE)",
        )
        parser.add_argument(
            "--token", default=None, help="PKCS#11 token label (default: KIHONET_CA_PKCS11_TOKEN)"
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing, successfully, when a CA exists already (for set-up scripts)",
        )

    def handle(self, *args, key_type, keystore, token, if_missing: bool, **options):
        if ca.exists() and if_missing:
            self.stdout.write(f"The CA exists already in {ca.ca_dir()}.")
            return
        keystore = keystore or settings.KIHONET_CA_KEYSTORE
        key_type = key_type or settings.KIHONET_CA_KEY_TYPE
        if key_type not in KEY_TYPES:
            raise CommandError(f"KIHONET_CA_KEY_TYPE must be one of {', '.join(KEY_TYPES)}.")
        try:
            material = create_ca(
                key_type=key_type,
                keystore=keystore,
                token_label=token,
                actor=audit.Actor.system("init_ca"),
            )
        except (ca.CaUnavailableError, CaUnavailableServiceError) as error:
            raise CommandError(str(error)) from error
        recorded = ca.recorded_keystore()
        fingerprints = ca_fingerprints(material)
        where = f"token {recorded['token']!r}" if keystore == "pkcs11" else "encrypted files"
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the root and the issuing CA ({key_type}, keys in {where}) in "
                f"{ca.ca_dir()}."
            )
        )
        labels = {
            "root_key_sha256": "root key (SHA-256 of its SubjectPublicKeyInfo)",
            "issuing_key_sha256": "issuing key (SHA-256 of its SubjectPublicKeyInfo)",
            "root_certificate_sha256": "root certificate (SHA-256 of its DER)",
            "issuing_certificate_sha256": "issuing certificate (SHA-256 of its DER)",
        }
        for field, label in labels.items():
            self.stdout.write(f"  {label}: {_colons(fingerprints[field])}")
        wanted = {"KIHONET_CA_KEYSTORE": keystore}
        if keystore == "pkcs11":
            wanted["KIHONET_CA_PKCS11_TOKEN"] = recorded["token"]
        differing = [
            f"{name}={value}" for name, value in wanted.items() if getattr(settings, name) != value
        ]
        if differing:
            self.stdout.write(
                self.style.WARNING(f"Set {' '.join(differing)} for the service to use these keys.")
            )


def _colons(hex_digest: str) -> str:
    """AB:CD:... as openssl x509 -fingerprint -sha256 shows it, for the ceremony's comparison."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))
