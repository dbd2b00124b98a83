"""R05, R16: the rules of a reissue request, as pure functions.

A reissue gives the user a notice with the next 枝番 (R16): 002 after 001, up to 999. Its
reason is one of the listed ones; 「その他」 says why in the note; an e-mail change (R05, the
only way to change the address) names a new address, different from the current one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

from django.utils.translation import gettext_lazy as _

from issuance.errors import ReissueError
from issuance.rules import formats

EMAIL_CHANGE = "email_change"
OTHER = "other"
LAST_BRANCH_NUMBER = 999


class _Numbered(Protocol):
    branch_number: str


def is_replaced(notice: _Numbered, notices_of_user: Iterable[_Numbered]) -> bool:
    """R16: a notice is replaced once its user has a (reissue) notice with a later branch
    number. Branch numbers are three digits, so they compare as strings."""
    return any(other.branch_number > notice.branch_number for other in notices_of_user)


def next_branch_number(highest: str | None) -> str:
    """The branch number after ``highest`` (the user's notices' highest; None for none)."""
    number = int(highest or formats.FIRST_BRANCH_NUMBER) + 1
    if number > LAST_BRANCH_NUMBER:
        raise ReissueError(_("枝番が上限（999）に達したため、再発行できません。"))
    return f"{number:03d}"


def notice_email(reason: str, new_email: str, current_email: str) -> str:
    """The address the reissue notice carries: the current one, or the new one of R05."""
    if reason != EMAIL_CHANGE:
        return current_email
    email = formats.normalize_email(new_email)
    if not email:
        raise ReissueError(
            _("Eメールアドレスの変更には新しいEメールアドレスが必要です。"), field="new_email"
        )
    if email == formats.normalize_email(current_email):
        raise ReissueError(
            _("新しいEメールアドレスが現在のアドレスと同じです。"), field="new_email"
        )
    return email


def check_request(
    *, reason: str, note: str, new_email: str, current_email: str, reasons: Collection[str]
) -> str:
    """Every rule of a request; returns the address of the new notice."""
    if reason not in reasons:
        raise ReissueError(_("再発行理由を選択してください。"), field="reason")
    if reason == OTHER and not note.strip():
        raise ReissueError(_("「その他」の場合は備考に理由を入力してください。"), field="note")
    return notice_email(reason, new_email, current_email)
