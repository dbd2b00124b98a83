from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand, CommandError

from issuance import ca
from issuance.pki import profile


class Command(BaseCommand):
    help = (
        "Exports the CA's public certificates only (root and issuing CA, PEM) with their SHA-256 "
        "fingerprints; never a key. Without --out the PEM goes to standard output."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", help="folder to write root-ca.pem and issuing-ca.pem into")

    def handle(self, *args, out, **options):
        if not ca.exists():
            raise CommandError("The CA has not been created yet: run `manage.py init_ca`.")
        certificates = {  # read from the CA folder: no key store, no PIN, no passphrase
            f"{name}-ca.pem": x509.load_pem_x509_certificate(ca.certificate_path(name).read_bytes())
            for name in (ca.ROOT_NAME, ca.ISSUING_NAME)
        }
        if not out:
            for cert in certificates.values():
                self.stdout.write(cert.public_bytes(serialization.Encoding.PEM).decode(), ending="")
            return
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, cert in certificates.items():
            path = folder / name
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            self.stdout.write(f"{path}  SHA-256 {profile.certificate_fingerprint(cert)}")
