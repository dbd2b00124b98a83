"""Reissue (再発行, R16): the desk gives the user a new notice 「再発行完了の通知文書」 with the
next branch number, with which the customer acquires a certificate as in R01.

A lost or stolen PC revokes the user's certificates at once (keyCompromise). For a new PC or a
new e-mail address (R05) the old certificate stays valid until the new one is acquired, when
enrollment revokes it as superseded, so the customer is never without access in between.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance import audit, desk_selectors, roles
from issuance.errors import ReissueError
from issuance.models import Certificate, KihonetUser, Notice, ReissueRecord
from issuance.rules import formats
from issuance.rules.business_days import registration_year
from issuance.services.certificates import revoke_certificate

Reason = ReissueRecord.Reason
LAST_BRANCH_NUMBER = 999


def next_branch_number(user: KihonetUser) -> str:
    """002 after 001, 003 after 002, … (the notices' highest branch number plus one)."""
    highest = Notice.objects.filter(user=user).aggregate(top=Max("branch_number"))["top"]
    number = int(highest or formats.FIRST_BRANCH_NUMBER) + 1
    if number > LAST_BRANCH_NUMBER:
        raise ReissueError(_("枝番が上限（999）に達したため、再発行できません。"))
    return f"{number:03d}"


def _notice_email(user: KihonetUser, reason: str, new_email: str) -> str:
    if reason != Reason.EMAIL_CHANGE:
        return user.email
    email = formats.normalize_email(new_email)
    if not email:
        raise ReissueError(
            _("Eメールアドレスの変更には新しいEメールアドレスが必要です。"), field="new_email"
        )
    if email == formats.normalize_email(user.email):
        raise ReissueError(
            _("新しいEメールアドレスが現在のアドレスと同じです。"), field="new_email"
        )
    return email


def _check_note(reason: str, note: str) -> None:
    """「その他」 says why in the note: the record must explain a reissue with no listed reason."""
    if reason == Reason.OTHER and not note.strip():
        raise ReissueError(_("「その他」の場合は備考に理由を入力してください。"), field="note")


def check_request(user: KihonetUser, *, reason: str, new_email: str = "", note: str = "") -> str:
    """Every rule of a reissue request (a listed reason, a note for 「その他」, a new and different
    address for an e-mail change, R05); returns the address of the new notice. The desk's
    confirmation step asks it before showing what will happen; ``reissue_notice`` again."""
    if reason not in Reason.values:
        raise ReissueError(_("再発行理由を選択してください。"), field="reason")
    _check_note(reason, note)
    return _notice_email(user, reason, new_email)


def _revoke_for_lost_pc(user: KihonetUser, actor: audit.Actor, note: str) -> list[str]:
    """A lost or stolen PC: every certificate not yet revoked ends now (keyCompromise)."""
    revoked = []
    for certificate in Certificate.objects.for_user(user).not_revoked().order_by("pk"):
        revoke_certificate(
            certificate, reason="keyCompromise", actor=actor, note=note or str(Reason.PC_LOST.label)
        )
        revoked.append(certificate.serial)
    return revoked


@transaction.atomic
def reissue_notice(
    *,
    user: KihonetUser,
    reason: str,
    actor: audit.Actor,
    new_email: str = "",
    note: str = "",
    today: date | None = None,
) -> ReissueRecord:
    """Creates the reissue notice with the next branch number, issued ``today`` (R16, R02)."""
    desk_selectors.check_staff_may(actor, roles.REISSUE, user)
    user = KihonetUser.objects.select_for_update().select_related("customer").get(pk=user.pk)
    email = check_request(user, reason=reason, new_email=new_email, note=note)
    issued_on = today or timezone.localdate()
    notice = Notice.objects.create(
        user=user,
        kind=Notice.Kind.REISSUE,
        branch_number=next_branch_number(user),
        printed_year=issued_on.year,
        registration_year=registration_year(issued_on),
        issued_on=issued_on,
        email=email,
    )
    record = ReissueRecord.objects.create(
        user=user,
        reason=reason,
        note=note,
        new_email=email if reason == Reason.EMAIL_CHANGE else "",
        new_notice=notice,
        staff=actor.staff,
    )
    revoked = _revoke_for_lost_pc(user, actor, note) if reason == Reason.PC_LOST else []
    audit.record(
        actor,
        "notice_reissued",
        notice,
        kihonet_user=user,
        reason=note or str(record.get_reason_display()),
        detail={
            "reason": reason,
            "branch_number": notice.branch_number,
            "email": email,
            "revoked": revoked,
        },
    )
    return record
