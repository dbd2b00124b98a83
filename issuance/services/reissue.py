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

from issuance import audit, roles
from issuance.models import Certificate, KihonetUser, Notice, ReissueRecord
from issuance.rules import reissue as reissue_rules
from issuance.rules.business_days import registration_year
from issuance.scoping import check_staff_may
from issuance.services.certificates import revoke_certificate

Reason = ReissueRecord.Reason


def next_branch_number(user: KihonetUser) -> str:
    """002 after 001, 003 after 002, … (the notices' highest branch number plus one)."""
    highest = Notice.objects.filter(user=user).aggregate(top=Max("branch_number"))["top"]
    return reissue_rules.next_branch_number(highest)


def check_request(user: KihonetUser, *, reason: str, new_email: str = "", note: str = "") -> str:
    """The rules of ``issuance.rules.reissue`` for ``user``; returns the new notice's address.
    The desk's confirmation step asks it before showing what will happen; ``reissue_notice``
    again."""
    return reissue_rules.check_request(
        reason=reason,
        note=note,
        new_email=new_email,
        current_email=user.email,
        reasons=Reason.values,
    )


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
    check_staff_may(actor, roles.REISSUE, user)
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
