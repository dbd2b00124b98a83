"""Issuing and revoking client certificates."""

from __future__ import annotations

import logging
import ssl
from datetime import datetime, timedelta
from typing import TypeGuard, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance import audit, ca
from issuance.errors import (
    CaUnavailableServiceError,
    CertificateRequestError,
    IssuedForAnotherKeyError,
    RevocationError,
    ServiceError,
)
from issuance.models import Certificate, KihonetUser, Notice
from issuance.pki import crl as pki_crl
from issuance.pki import csr as pki_csr
from issuance.pki import keys, profile
from issuance.selectors.contacts import desks_detail
from issuance.services.crl import publish_crl

logger = logging.getLogger(__name__)

CSR_MESSAGES = {
    "too_large": _("証明書署名要求（CSR）が大きすぎます。"),
    "malformed": _("証明書署名要求（CSR）の形式が正しくありません。"),
    "wrong_pem_type": _("証明書署名要求（CSR）ではないデータが送信されました。"),
    "bad_signature": _("証明書署名要求（CSR）の署名が正しくありません。"),
    "key_type": _(
        "この鍵の種類には対応していません（EC P-256／P-384 または RSA 2048～4096ビット）。"
    ),
    "key_size": _("RSA鍵の長さは2048～4096ビットにしてください。"),
    "key_exponent": _("RSA鍵の公開指数は65537にしてください。新しい鍵を作成してください。"),
    "key_reused": _(
        "この公開鍵はすでに証明書の発行に使用されています。新しい鍵を作成してください。"
    ),
}


RECORD_UNUSABLE = _(
    "ご登録内容に証明書に記載できない文字が含まれているため、証明書を発行できません。照会先にお問い合わせください。"
)


def _check_request(csr_data: bytes | str) -> x509.CertificateSigningRequest:
    try:
        return pki_csr.check_csr(csr_data)
    except pki_csr.CsrError as error:
        raise CertificateRequestError(
            CSR_MESSAGES[error.code], detail={"csr": error.code}
        ) from error


def _key_reused() -> CertificateRequestError:
    return CertificateRequestError(CSR_MESSAGES["key_reused"], detail={"csr": "key_reused"})


def _subject(user: KihonetUser, email: str) -> profile.ClientSubject:
    return profile.ClientSubject(
        user_id=user.user_id,
        management_number=user.management_number,
        kihonet_code=user.customer.kihonet_code,
        email=email,
    )


def _is_key_reuse(error: IntegrityError) -> bool:
    return "public_key_fingerprint" in str(error)


def issue_certificate(
    *,
    user: KihonetUser,
    csr_data: bytes | str,
    actor: audit.Actor,
    notice: Notice | None = None,
    renewed_from: Certificate | None = None,
    now: datetime | None = None,
) -> Certificate:
    """Checks the CSR, signs a three-year client certificate for ``user`` and stores it.

    The subject and the e-mail come from our records, never from the CSR (R05, R12). The
    certificate and its audit event are written together (``audit.create_with_event``: one
    statement, so one transaction even outside ``atomic``). A public key certified before is
    refused by the unique constraint (no extra query: the certificate signed meanwhile is
    never stored).
    """
    request = _check_request(csr_data)
    public_key = cast(keys.PublicKey, request.public_key())  # check_csr admits EC and RSA only
    material = ca.signing_material()
    email = renewed_from.email if renewed_from else (notice.email if notice else user.email)
    try:
        built = profile.build_client_certificate(
            material.client_profile,
            public_key,
            _subject(user, email),
            profile.new_serial(),
            now or timezone.now(),
            material.issuing_cert,
            material.issuing_key,
        )
    except profile.ProfileError as error:
        raise ServiceError(RECORD_UNUSABLE, detail={"profile": error.code}) from error
    except keys.KeyStoreError as error:  # the token went away and did not come back
        logger.error("The CA cannot sign: %s", error)
        raise CaUnavailableServiceError() from error
    der = built.public_bytes(serialization.Encoding.DER)
    certificate = Certificate(
        user=user,
        notice=notice,
        renewed_from=renewed_from,
        serial=profile.serial_hex(built.serial_number),
        subject=built.subject.rfc4514_string(),
        email=email,
        not_before=built.not_valid_before_utc,
        not_after=built.not_valid_after_utc,
        pem=ssl.DER_cert_to_PEM_cert(der),
        fingerprint=profile.der_fingerprint(der),
        public_key_fingerprint=profile.public_key_fingerprint(public_key),
    )
    try:
        audit.create_with_event(
            certificate,
            actor,
            "certificate_issued",
            kihonet_user=user,
            detail={"serial": certificate.serial, "not_after": certificate.not_after.isoformat()},
        )
    except IntegrityError as error:
        if _is_key_reuse(error):
            raise _key_reused() from error
        raise
    return certificate


def replay_allowed(certificate: Certificate | None, now: datetime) -> TypeGuard[Certificate]:
    """Whether a request that issued ``certificate`` may still be answered again: for
    ``KIHONET_ISSUE_REPLAY_HOURS`` after issuing, while the certificate is not revoked."""
    if certificate is None or certificate.is_revoked:
        return False
    return now < certificate.created_at + timedelta(hours=settings.KIHONET_ISSUE_REPLAY_HOURS)


def replay_certificate(
    certificate: Certificate, csr_data: bytes | str, *, user: KihonetUser, actor: audit.Actor
) -> Certificate:
    """The answer again to an issuing request whose first answer was lost (connection dropped,
    server killed after the commit): the same certificate for a CSR of the same public key,
    recorded as ``certificate_replayed``; a CSR of another key is refused (3452).

    The caller holds the row lock that made the first request's certificate the only one.
    """
    request = _check_request(csr_data)
    if profile.public_key_fingerprint(request.public_key()) != certificate.public_key_fingerprint:
        raise IssuedForAnotherKeyError(detail=desks_detail(user.customer))
    audit.record(
        actor,
        "certificate_replayed",
        certificate,
        kihonet_user=user,
        detail={"serial": certificate.serial},
    )
    return certificate


@transaction.atomic
def revoke_certificate(
    certificate: Certificate,
    *,
    reason: str,
    actor: audit.Actor,
    note: str = "",
    now: datetime | None = None,
) -> Certificate:
    """Revokes with an RFC 5280 reason; a revoked certificate stays revoked. Republishes the CRL."""
    pki_crl.reason_from_name(reason)  # ValueError for a name RFC 5280 does not know
    locked = Certificate.objects.select_for_update().get(pk=certificate.pk)
    if locked.is_revoked:
        raise RevocationError()
    locked.revoked_at = now or timezone.now()
    locked.revocation_reason = reason
    locked.save(update_fields=["revoked_at", "revocation_reason"])
    audit.record(
        actor,
        "certificate_revoked",
        locked,
        kihonet_user=locked.user,
        reason=note,
        detail={"serial": locked.serial, "reason": reason},
    )
    transaction.on_commit(_publish_crl_after_revocation)
    return locked


def _publish_crl_after_revocation() -> None:
    """The revocation is committed either way; while the CA cannot sign (its token away) the
    hourly job publishes the CRL once it can, and OCSP answers "revoked" at once."""
    try:
        publish_crl()
    except CaUnavailableServiceError:
        logger.error("The CRL is not republished after a revocation: the CA cannot sign now")
