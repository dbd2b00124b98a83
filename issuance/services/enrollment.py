"""New acquisition (新規取得), steps ⑥ to ⑧ of the manual: match the six fields to a notice,
confirm the e-mail, sign the certificate for the key the client tool made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from issuance import audit, tokens
from issuance.errors import (
    EmailNotConfirmedError,
    InputMismatchError,
    NoticeUsedError,
    TokenError,
)
from issuance.models import Certificate, Enrollment, Notice, ReissueRecord
from issuance.querysets import one_or_none
from issuance.rules.reissue import is_replaced
from issuance.selectors.contacts import desks_detail
from issuance.services import lockout
from issuance.services.certificates import (
    issue_certificate,
    replay_allowed,
    replay_certificate,
    revoke_certificate,
)


@dataclass(frozen=True)
class NoticeFields:
    """The six fields as the customer typed them, already normalised (R01)."""

    kihonet_code: str
    management_number: str
    user_id: str
    year: str
    branch_number: str
    email: str


def _notices_of(user_id: str) -> list[Notice]:
    """Every notice of the user (a few: the first and its reissues), with user and customer.

    One plain query by the unique ユーザーID; the six fields are compared in Python, and the same
    rows tell whether a later branch number has replaced the matching notice (R16)."""
    return list(
        Notice.objects.select_related("user__customer").filter(user__user_id=user_id).order_by()
    )


def _matching_notice(fields: NoticeFields, notices: list[Notice]) -> Notice | None:
    """The notice all six fields match, or None: never says which field was wrong (R03)."""
    for notice in notices:
        user = notice.user
        if (
            notice.branch_number == fields.branch_number
            and user.user_id == fields.user_id
            and user.management_number == fields.management_number
            and user.customer.kihonet_code == fields.kihonet_code
            and notice.email == fields.email
            and notice.accepts_year(int(fields.year))
        ):
            return notice
    return None


def _used_notice_error(notice: Notice) -> NoticeUsedError:
    """R16: a used (or replaced) notice needs a reissue; the desk to call is named (R15)."""
    return NoticeUsedError(detail=desks_detail(notice.user.customer))


def start_enrollment(fields: NoticeFields, *, ip_address: str | None) -> tuple[Enrollment, str]:
    """Step ⑥: the six fields against the notices; a one-time token for the next steps.

    The try is counted before the fields are compared (per person and per address, R03), so
    no more wrong tries than the limit are ever evaluated; a mismatch keeps its count (and may
    write the lock) outside any transaction, so the refusal does not roll it back.
    """
    attempt = lockout.begin(fields.kihonet_code, fields.user_id, ip_address)
    try:
        notices = _notices_of(fields.user_id)
        notice = _matching_notice(fields, notices)
    except BaseException:
        lockout.release(attempt)  # not evaluated: the slot is given back
        raise
    if notice is None:
        lockout.failed(attempt)
        raise InputMismatchError()
    lockout.release(attempt)
    if notice.is_used or is_replaced(notice, notices):
        raise _used_notice_error(notice)
    return _open_enrollment_for(notice, ip_address)


def _open_enrollment_for(notice: Notice, ip_address: str | None) -> tuple[Enrollment, str]:
    token = tokens.new_token()
    now = timezone.now()
    enrollment = Enrollment(
        notice=notice,
        token_digest=tokens.digest(token),
        email=notice.email,
        expires_at=now + timedelta(minutes=settings.KIHONET_ENROLLMENT_TOKEN_MINUTES),
        ip_address=ip_address,
        created_at=now,
    )
    audit.create_with_event(
        enrollment, _actor(notice, ip_address), "enrollment_started", kihonet_user=notice.user
    )
    return enrollment, token


def _actor(notice: Notice, ip_address: str | None) -> audit.Actor:
    return audit.Actor.customer(notice.user.user_id, ip_address)


def _locked_enrollment(
    token: str, *, related: tuple[str, ...], lock_notice: bool = False
) -> Enrollment | None:
    """The enrollment of ``token``, its row locked, read with its ``related`` rows; with
    ``lock_notice`` its notice's row is locked too, in the same query (read once the lock is
    held)."""
    queryset = Enrollment.objects.select_related(*related).select_for_update(
        of=("self", "notice") if lock_notice else ("self",)
    )
    return one_or_none(queryset.filter(token_digest=tokens.digest(token)))


def _still_open(enrollment: Enrollment | None) -> Enrollment:
    if enrollment is None or enrollment.is_completed or enrollment.expires_at <= timezone.now():
        raise TokenError()
    return enrollment


def _open_enrollment(token: str, *, related: str) -> Enrollment:
    return _still_open(_locked_enrollment(token, related=(related,)))


@transaction.atomic
def confirm_email(token: str, *, ip_address: str | None) -> Enrollment:
    """Step ⑦: the customer has read the address and pressed OK (R04)."""
    enrollment = _open_enrollment(token, related="notice__user")
    if enrollment.confirmed_at is None:
        enrollment.confirmed_at = timezone.now()
        enrollment.save(update_fields=["confirmed_at"])
        audit.record(
            _actor(enrollment.notice, ip_address),
            "email_confirmed",
            enrollment,
            kihonet_user=enrollment.notice.user,
            detail={"email": enrollment.email},
        )
    return enrollment


@transaction.atomic
def complete_enrollment(
    token: str, csr_data: str | bytes, *, ip_address: str | None
) -> Certificate:
    """Step ⑧: the certificate for the client tool's key; the notice is used up with it.

    The enrollment and its notice are locked (in one statement, the notice read once the lock
    is held), so two requests at once with the same token or the same notice give one
    certificate, never two. The same request sent again after its answer was lost gets the
    same certificate (same token, same public key; ``replay_certificate``).
    """
    found = _locked_enrollment(token, related=("notice__user__customer",), lock_notice=True)
    # Its certificate is read once the lock is held, not joined: a request that waited for the
    # lock would see the enrollment's new row but no certificate in the join.
    if (
        found is not None
        and found.is_completed
        and replay_allowed(found.certificate, timezone.now())
    ):
        notice = found.notice
        return replay_certificate(
            found.certificate, csr_data, user=notice.user, actor=_actor(notice, ip_address)
        )
    enrollment = _still_open(found)
    if enrollment.confirmed_at is None:
        raise EmailNotConfirmedError()
    notice = enrollment.notice
    if notice.is_used:
        raise _used_notice_error(notice)
    actor = _actor(notice, ip_address)
    certificate = issue_certificate(user=notice.user, notice=notice, csr_data=csr_data, actor=actor)
    notice.used_at = certificate.created_at
    notice.save(update_fields=["used_at"])
    enrollment.certificate = certificate
    enrollment.save(update_fields=["certificate"])
    _start_using(notice, actor)
    _supersede_older_certificates(notice, certificate, actor)
    return certificate


def _start_using(notice: Notice, actor: audit.Actor) -> None:
    user = notice.user
    if user.email != notice.email:  # a reissue for a new address (R05)
        user.email = notice.email
        user.save(update_fields=["email"])
    customer = user.customer
    if not customer.started_using:
        customer.started_using = True
        customer.save(update_fields=["started_using"])
        audit.record(actor, "customer_started_using", customer, kihonet_user=user)


def _supersede_older_certificates(notice: Notice, new: Certificate, actor: audit.Actor) -> None:
    """After a reissue the old certificates end when the new one is acquired, so the customer
    is never without access in between (a lost PC's were revoked at the reissue already)."""
    if notice.kind != Notice.Kind.REISSUE:
        return
    record = ReissueRecord.objects.filter(new_notice=notice).first()
    older = Certificate.objects.for_user(notice.user).not_revoked().exclude(pk=new.pk)
    for certificate in older:
        revoke_certificate(
            certificate,
            reason="superseded",
            actor=actor,
            note=record.get_reason_display() if record else "",
        )
