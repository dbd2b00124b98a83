"""Auto-renewal (自動更新): the client tool's signed report that it renews a certificate by
itself, and the CA moving the suggested renewal windows (「今すぐ更新」)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from issuance import audit
from issuance.errors import ProofOfPossessionError, RenewalError, ServiceError
from issuance.models import AutoRenewal, Certificate, RenewalChallenge, RenewalWindowMove
from issuance.pki import profile
from issuance.rules import renewal_info
from issuance.services.renewal import (
    _offered_challenge,
    _our_certificate,
    _use_challenge,
    check_reportable,
)


@transaction.atomic
def report_auto_renewal(
    *,
    serial: str,
    certificate_pem: str,
    challenge: str,
    signature: str,
    enabled: bool,
    ip_address: str | None,
) -> AutoRenewal:
    """The tool's check-in: auto-renewal is on (or off) for this certificate, signed with its
    key over a one-time challenge of purpose ``auto_renewal_report``
    (``renewal_info.report_message``), so a replay or someone holding only the public PEM gets
    3480. The setting's changes are audited; a check-in with no change only moves the time."""
    if not challenge.isascii():
        raise ProofOfPossessionError()
    certificate, parsed = _our_certificate(certificate_pem, lock=True)
    if profile.serial_hex(parsed.serial_number) != serial:
        raise RenewalError(_("シリアル番号と証明書が一致しません。"))
    now = timezone.now()
    check_reportable(certificate, now)
    offered = _offered_challenge(
        certificate, challenge, RenewalChallenge.Purpose.AUTO_RENEWAL_REPORT
    )
    _use_challenge(
        offered, parsed, challenge, signature, now, renewal_info.report_message(challenge, enabled)
    )
    current = AutoRenewal.objects.filter(certificate=certificate).first()
    values = {"enabled": enabled, "checked_in_at": now, "ip_address": ip_address}
    if current is None or current.enabled != enabled:
        values["changed_at"] = now
        audit.record(
            audit.Actor.customer(certificate.user.user_id, ip_address),
            "auto_renewal_enabled" if enabled else "auto_renewal_disabled",
            certificate,
            kihonet_user=certificate.user,
            detail={"serial": certificate.serial},
        )
    report, _created = AutoRenewal.objects.update_or_create(
        certificate=certificate, defaults=values
    )
    return report


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("理由を入力してください。"), field="reason")
    return reason


@transaction.atomic
def move_renewal_windows(
    certificates: Iterable[Certificate],
    *,
    start: datetime,
    end: datetime | None = None,
    reason: str,
    actor: audit.Actor,
) -> int:
    """The CA moves the suggested renewal window of each certificate to ``[start, end)``
    (default: ``MOVED_WINDOW_LENGTH`` long, "renew now" when ``start`` is now); the answer
    keeps it inside R09. One transaction, one audit event per certificate."""
    reason = _require_reason(reason)
    end = end or start + renewal_info.MOVED_WINDOW_LENGTH
    if end <= start:
        raise ServiceError(_("終了日時は開始日時より後にしてください。"), field="end")
    moved = 0
    for certificate in certificates:
        RenewalWindowMove.objects.update_or_create(
            certificate=certificate,
            defaults={"start": start, "end": end, "reason": reason, "moved_at": timezone.now()},
        )
        audit.record(
            actor,
            "renewal_window_moved",
            certificate,
            kihonet_user=certificate.user,
            reason=reason,
            detail={
                "serial": certificate.serial,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
        )
        moved += 1
    return moved


@transaction.atomic
def restore_renewal_windows(
    certificates: Iterable[Certificate], *, reason: str, actor: audit.Actor
) -> int:
    """Back to each certificate's own spread window; audited for those that had a move."""
    reason = _require_reason(reason)
    restored = 0
    for certificate in certificates:
        deleted, _rows = RenewalWindowMove.objects.filter(certificate=certificate).delete()
        if deleted:
            audit.record(
                actor,
                "renewal_window_restored",
                certificate,
                kihonet_user=certificate.user,
                reason=reason,
                detail={"serial": certificate.serial},
            )
            restored += 1
    return restored
