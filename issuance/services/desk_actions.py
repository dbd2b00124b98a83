"""The back office's everyday actions other than reissue: revoke a certificate, lift an input
lock, record the printing of a notice. Each checks the staff member's permission and desk, runs
in one transaction and is written to the audit log with the staff user, address and reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from issuance import audit, labels, roles
from issuance.errors import DeskActionError
from issuance.models import Certificate, InputLock, Notice
from issuance.scoping import check_staff_may, staff_scope
from issuance.services import lockout
from issuance.services.certificates import revoke_certificate

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

# The RFC 5280 reasons a desk may give, with the words the staff read.
STAFF_REVOCATION_REASONS: dict[str, StrPromise] = {
    code: labels.REVOCATION_REASONS[code]
    for code in (
        "keyCompromise",
        "superseded",
        "affiliationChanged",
        "cessationOfOperation",
        "unspecified",
    )
}
# When each applies, as the revoke form explains it to the clerk.
STAFF_REVOCATION_HELP: dict[str, StrPromise] = {
    "keyCompromise": _(
        "パソコンの紛失・盗難、第三者に使われたおそれがあるときなど、証明書を悪用されるおそれがある場合。"
    ),
    "superseded": _("新しい証明書（再発行・更新）に切り替わり、この証明書が不要になった場合。"),
    "affiliationChanged": _(
        "ご担当者の退職・異動などで、このユーザーが証明書を使わなくなった場合。"
    ),
    "cessationOfOperation": _("お客様が企保ネットのご利用をやめる場合（解約など）。"),
    "unspecified": _("上のどれにも当たらない場合。理由の詳細に必ず内容を入力してください。"),
}


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DeskActionError(_("理由を入力してください。"))
    return reason


@transaction.atomic
def revoke_for_desk(
    certificate: Certificate, *, reason: str, note: str, actor: audit.Actor
) -> Certificate:
    """Revokes at a customer's request; the CRL is republished on commit (OCSP reads the row)."""
    check_staff_may(actor, roles.REVOKE, certificate.user)
    if reason not in STAFF_REVOCATION_REASONS:
        raise DeskActionError(_("失効理由を選択してください。"))
    return revoke_certificate(certificate, reason=reason, actor=actor, note=_require_reason(note))


@transaction.atomic
def lift_input_lock(lock: InputLock, *, reason: str, actor: audit.Actor) -> InputLock:
    check_staff_may(actor, roles.LIFT_LOCK)
    if (
        actor.staff is not None
        and not staff_scope(actor.staff).input_locks(InputLock.objects.filter(pk=lock.pk)).exists()
    ):
        raise PermissionDenied("lock outside the desk")
    locked = InputLock.objects.select_for_update().get(pk=lock.pk)
    if locked.lifted_at is not None:
        raise DeskActionError(_("この入力ロックはすでに解除されています。"))
    return lockout.lift_lock(locked, actor=actor, reason=_require_reason(reason))


@transaction.atomic
def record_notice_printed(notice: Notice, *, actor: audit.Actor, output: str) -> None:
    """Printing a notice shows its six fields: who printed which, and when, is kept."""
    check_staff_may(actor, roles.PRINT, notice.user)
    audit.record(
        actor,
        "notice_printed",
        notice,
        kihonet_user=notice.user,
        detail={"branch_number": notice.branch_number, "output": output},
    )
