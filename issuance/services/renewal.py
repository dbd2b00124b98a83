"""Renewal (更新), the manual's renewal chapter: the client tool proves it holds the current
certificate's key by signing a one-time challenge, and gets a new certificate for a new key
with the same subject and e-mail (R09, R11, R12)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from issuance import audit, tokens
from issuance.errors import ProofOfPossessionError, RenewalError, TooManyChallengesError
from issuance.models import Certificate, RenewalChallenge
from issuance.pki import pop
from issuance.querysets import one_or_none
from issuance.rules import renewal as renewal_rules
from issuance.selectors.certificates import has_renewal, open_challenge_count
from issuance.selectors.contacts import desks_detail
from issuance.services.certificates import (
    issue_certificate,
    replay_allowed,
    replay_certificate,
    revoke_certificate,
)

# A certificate's holder needs one challenge at a time; anyone else who has its PEM (it is
# public) must not be able to fill the table.


def _parse(certificate_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode())
    except (ValueError, TypeError, UnicodeEncodeError) as error:
        raise RenewalError(_("クライアント証明書の形式が正しくありません。")) from error


def _our_certificate(
    certificate_pem: str, *, lock: bool = False
) -> tuple[Certificate, x509.Certificate]:
    parsed = _parse(certificate_pem)
    queryset = Certificate.objects.select_related("user__customer")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    found = one_or_none(queryset.holding(parsed))
    if found is None:
        raise RenewalError(_("このクライアント証明書は企保ネットで発行されたものではありません。"))
    return found, parsed


def _with_desks(message: str, certificate: Certificate) -> RenewalError:
    return RenewalError(message, detail=desks_detail(certificate.user.customer))


def check_renewable(certificate: Certificate, now: datetime) -> None:
    """Every reason a certificate cannot be renewed now, each with its own message."""
    if not renewal_rules.renewal_offered(now):
        raise RenewalError(renewal_rules.renewal_not_yet_offered_message())
    # Renewed first: with KIHONET_RENEWAL_REVOKES_OLD the renewed certificate is also revoked,
    # and its holder has a new certificate, not a reissue to ask for.
    if has_renewal(certificate):
        raise RenewalError(_("このクライアント証明書はすでに更新済みです。"))
    check_reportable(certificate, now)  # revoked or expired: a reissue, the desks to call
    opens_at = renewal_rules.renewal_opens_at(certificate.not_after)
    if now < opens_at:
        day = date_format(timezone.localtime(opens_at), "Y年n月j日")
        raise RenewalError(_("このクライアント証明書の更新は%(day)sから可能です。") % {"day": day})


def check_reportable(certificate: Certificate, now: datetime) -> None:
    """Why the auto-renewal of a certificate can no longer be reported: revoked or expired
    (the tool then stops for it and shows the desks to call, R15)."""
    if certificate.is_revoked:
        raise _with_desks(
            _(
                "このクライアント証明書は失効しているため更新できません。クライアント証明書の再発行手続きが必要です。"
            ),
            certificate,
        )
    if now >= certificate.not_after:
        raise _with_desks(
            _("有効期限を経過した場合は、クライアント証明書の再発行手続きが必要です。"), certificate
        )


@transaction.atomic
def create_challenge(
    certificate_pem: str, purpose: str = RenewalChallenge.Purpose.RENEWAL
) -> tuple[RenewalChallenge, str]:
    """Step ⑥, first half: a fresh one-time challenge for the certificate the tool holds.

    ``purpose`` ``auto_renewal_report``: a challenge for the tool's signed report that
    auto-renewal is on (``services.auto_renewal``), given out outside the renewal window too;
    it cannot renew."""
    certificate, _parsed = _our_certificate(certificate_pem)
    now = timezone.now()
    if purpose == RenewalChallenge.Purpose.AUTO_RENEWAL_REPORT:
        check_reportable(certificate, now)
    else:
        check_renewable(certificate, now)
    if open_challenge_count(certificate, now) >= settings.KIHONET_RENEWAL_MAX_OPEN_CHALLENGES:
        raise TooManyChallengesError()
    challenge = tokens.new_token()
    issued = RenewalChallenge.objects.create(
        certificate=certificate,
        challenge_digest=tokens.digest(challenge),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.KIHONET_RENEWAL_CHALLENGE_MINUTES),
        purpose=purpose,
    )
    return issued, challenge


def _decode_signature(signature: str) -> bytes:
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ProofOfPossessionError() from error


def _offered_challenge(
    certificate: Certificate, challenge: str, purpose: str = RenewalChallenge.Purpose.RENEWAL
) -> RenewalChallenge | None:
    """The challenge given out for ``certificate`` and ``purpose``, its row locked."""
    return one_or_none(
        RenewalChallenge.objects.select_for_update().filter(
            challenge_digest=tokens.digest(challenge), certificate=certificate, purpose=purpose
        )
    )


def _check_signature(
    parsed: x509.Certificate, challenge: str, signature: str, signed: bytes | None = None
) -> None:
    """``signed``: what was signed, when it is more than the challenge itself."""
    data = challenge.encode() if signed is None else signed
    if not pop.verify_challenge_signature(parsed, data, _decode_signature(signature)):
        raise ProofOfPossessionError()


def _use_challenge(
    offered: RenewalChallenge | None,
    parsed: x509.Certificate,
    challenge: str,
    signature: str,
    now: datetime,
    signed: bytes | None = None,
) -> None:
    if offered is None or offered.used_at is not None or offered.expires_at <= now:
        raise ProofOfPossessionError()
    _check_signature(parsed, challenge, signature, signed)
    offered.used_at = now
    offered.save(update_fields=["used_at"])


def _replayed_renewal(
    certificate: Certificate,
    parsed: x509.Certificate,
    offered: RenewalChallenge | None,
    request: tuple[str, str, str],
    actor: audit.Actor,
    now: datetime,
) -> Certificate | None:
    """The renewal the used ``offered`` challenge gave, when this is that request again (its
    answer was lost): the old key signed the challenge and the CSR has the new key again.
    A certificate is renewed once, so a used challenge of it belongs to its renewal."""
    if offered is None or offered.used_at is None:
        return None
    renewed = one_or_none(Certificate.objects.filter(renewed_from=certificate))
    if not replay_allowed(renewed, now):
        return None
    challenge, signature, csr_data = request
    _check_signature(parsed, challenge, signature)
    return replay_certificate(renewed, csr_data, user=certificate.user, actor=actor)


@transaction.atomic
def renew(
    *, certificate_pem: str, challenge: str, signature: str, csr_data: str, ip_address: str | None
) -> Certificate:
    """Step ⑥, second half: one new certificate for the new key; the old one is locked first,
    so two renewals at once give one new certificate. The same request sent again after its
    answer was lost gets the same renewed certificate (``replay_certificate``)."""
    if not challenge.isascii():
        raise ProofOfPossessionError()
    certificate, parsed = _our_certificate(certificate_pem, lock=True)
    now = timezone.now()
    actor = audit.Actor.customer(certificate.user.user_id, ip_address)
    offered = _offered_challenge(certificate, challenge)
    replayed = _replayed_renewal(
        certificate, parsed, offered, (challenge, signature, csr_data), actor, now
    )
    if replayed is not None:
        return replayed
    check_renewable(certificate, now)
    _use_challenge(offered, parsed, challenge, signature, now)
    renewed = issue_certificate(
        user=certificate.user, csr_data=csr_data, actor=actor, renewed_from=certificate, now=now
    )
    audit.record(
        actor,
        "certificate_renewed",
        renewed,
        kihonet_user=certificate.user,
        detail={"old_serial": certificate.serial, "new_serial": renewed.serial},
    )
    if settings.KIHONET_RENEWAL_REVOKES_OLD:
        revoke_certificate(certificate, reason="superseded", actor=actor, note="renewed")
    return renewed
