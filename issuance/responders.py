"""What the CA publishes: the chain, the CRL (from the cache) and OCSP answers."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from issuance import ca
from issuance.models import Certificate, CrlPublication
from issuance.pki import crl as pki_crl
from issuance.pki import keys, ocsp, profile
from issuance.services import crl as crl_service
from issuance.services import ocsp_responder


def chain_pem() -> str:
    return ca.load().chain_pem


def issuing_ca_der() -> bytes:
    return ca.load().issuing_cert.public_bytes(serialization.Encoding.DER)


def crl_der() -> bytes:
    """The latest published CRL; built here only when none was ever published."""
    der = cache.get(crl_service.CRL_CACHE_KEY)
    if der is None:
        latest = CrlPublication.objects.exclude(der=b"").only("der").first()
        der = bytes(latest.der) if latest else bytes(crl_service.publish_crl().der)
        cache.set(crl_service.CRL_CACHE_KEY, der, None)
    return der


def ocsp_response(request_der: bytes) -> bytes:
    """An RFC 6960 answer: good, revoked (with time and reason) or unknown, nonce echoed,
    signed by the delegated responder; tryLater when there is none and the CA cannot sign."""
    try:
        query = ocsp.parse_ocsp_request(request_der)
    except ocsp.OcspError:
        return ocsp.malformed_request_response()
    material = ca.load()
    if not ocsp.matches_issuer(query, material.issuing_cert):
        return ocsp.unauthorized_response()
    now = timezone.now()
    try:
        signer = ocsp_responder.responder(now)
    except (ca.CaUnavailableError, keys.KeyStoreError):  # logged by the responder service
        return ocsp.try_later_response()
    certificate = (
        Certificate.objects.filter(serial=profile.serial_hex(query.serial))
        .only("revoked_at", "revocation_reason")
        .first()
    )
    status: ocsp.CertStatus
    if certificate is None:
        status, revoked_at, reason = "unknown", None, None
    elif certificate.is_revoked:
        status, revoked_at = "revoked", certificate.revoked_at
        reason = pki_crl.reason_from_name(certificate.revocation_reason or "unspecified")
    else:
        status, revoked_at, reason = "good", None, None
    return ocsp.build_ocsp_response(
        query,
        material.issuing_cert,
        signer.key,
        status,
        this_update=now,
        next_update=now + timedelta(minutes=settings.KIHONET_OCSP_VALIDITY_MINUTES),
        revoked_at=revoked_at,
        reason=reason,
        responder_cert=signer.cert,
    )
