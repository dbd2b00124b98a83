"""Reads of the certificates' life: the enrollment of a token, a certificate's status as the
client tool sees it, its renewal and the renewal-info answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from issuance import tokens
from issuance.models import (
    Certificate,
    Enrollment,
    RenewalWindowMove,
)
from issuance.rules import renewal_info
from issuance.rules.renewal import renewal_opens_at


def open_enrollment(token: str) -> Enrollment | None:
    """The enrollment of ``token`` while it can still go on: known, not expired, not done."""
    return Enrollment.objects.filter(
        token_digest=tokens.digest(token), certificate__isnull=True, expires_at__gt=timezone.now()
    ).first()


def enrolled_certificate(token: str) -> Certificate | None:
    found = (
        Enrollment.objects.select_related("certificate")
        .filter(token_digest=tokens.digest(token), certificate__isnull=False)
        .first()
    )
    return found.certificate if found else None


def has_renewal(certificate: Certificate) -> bool:
    return Certificate.objects.renewals_of(certificate).exists()


def certificate_status(serial: str, now: datetime) -> str | None:
    """The client tool's view of a certificate: valid, renewed, revoked or expired.

    Revoked before expired before renewed: a renewed certificate that has expired is
    "expired". None for a serial kihonet did not issue.
    """
    certificate = Certificate.objects.filter(serial=serial).first()
    if certificate is None:
        return None
    return _status_of(certificate, now)


def _status_of(certificate: Certificate, now: datetime) -> str:
    status = certificate.status_at(now)
    if status != Certificate.Status.VALID:
        return status.value
    return "renewed" if has_renewal(certificate) else status.value


def renewed_certificate(serial: str) -> Certificate | None:
    """A certificate made by a renewal, by its serial (unguessable: 159 random bits)."""
    return Certificate.objects.filter(serial=serial.upper(), renewed_from__isnull=False).first()


def open_challenge_count(certificate: Certificate, now: datetime) -> int:
    """Renewal challenges of ``certificate`` that are neither used nor expired."""
    return certificate.renewal_challenges.filter(used_at__isnull=True, expires_at__gt=now).count()


def renewal_offered_from() -> datetime:
    """R11: the first moment renewal is offered, 0:00 Japan time of the start date."""
    return timezone.make_aware(datetime.combine(settings.KIHONET_RENEWAL_START_DATE, time.min))


@dataclass(frozen=True)
class RenewalInfo:
    """The renewal-info answer: the certificate's status and, while it is valid and not
    renewed, the suggested window (``renewal_info.suggested_window``)."""

    serial: str
    status: str
    window: renewal_info.Window | None
    retry_after: timedelta
    moved: bool


def renewal_info_of(
    certificate: Certificate, now: datetime, *, spread: timedelta = renewal_info.SPREAD
) -> RenewalInfo:
    status = _status_of(certificate, now)
    window = None
    move = RenewalWindowMove.objects.filter(certificate=certificate).first()
    if status == "valid":
        window = renewal_info.suggested_window(
            serial=certificate.serial,
            opens_at=renewal_opens_at(certificate.not_after),
            not_after=certificate.not_after,
            offered_from=renewal_offered_from(),
            moved=renewal_info.Window(move.start, move.end) if move else None,
            spread=spread,
        )
    return RenewalInfo(
        serial=certificate.serial,
        status=status,
        window=window,
        retry_after=renewal_info.retry_after(window, now),
        moved=move is not None and window is not None,
    )


def renewal_info_for_serial(serial: str, now: datetime) -> RenewalInfo | None:
    """``GET /api/v1/certificates/{serial}/renewal-info``; None for a serial not ours."""
    certificate = Certificate.objects.filter(serial=serial).first()
    return renewal_info_of(certificate, now) if certificate else None
