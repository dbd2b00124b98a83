"""Creating the CA (the key ceremony): the CA, its audit event and its first CRL together."""

from __future__ import annotations

from django.db import transaction

from issuance import audit, ca
from issuance.pki import profile
from issuance.services.crl import publish_crl


def fingerprints(material: ca.CaMaterial) -> dict[str, str]:
    """The SHA-256 fingerprints the ceremony compares: keys' SubjectPublicKeyInfo and DER."""
    return {
        "root_key_sha256": profile.public_key_fingerprint(material.root_cert.public_key()),
        "issuing_key_sha256": profile.public_key_fingerprint(material.issuing_cert.public_key()),
        "root_certificate_sha256": profile.certificate_fingerprint(material.root_cert),
        "issuing_certificate_sha256": profile.certificate_fingerprint(material.issuing_cert),
    }


@transaction.atomic
def create_ca(
    *, key_type: str, keystore: str, token_label: str | None, actor: audit.Actor
) -> ca.CaMaterial:
    """Creates the root and the issuing CA (``ca.create``: never overwrites), then, in the same
    transaction, the ``ca_created`` event with the fingerprints and the first CRL: a CA is never
    recorded without its CRL, nor its CRL without the ceremony's record."""
    material = ca.create(key_type, keystore=keystore, token_label=token_label)
    audit.record(
        actor,
        "ca_created",
        detail={
            "key_type": key_type,
            "subject": material.issuing_cert.subject.rfc4514_string(),
            **ca.recorded_keystore(),
            **fingerprints(material),
        },
    )
    publish_crl()
    return material
