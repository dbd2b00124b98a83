"""issuance.rules.reissue (R05, R16): pure, no database."""

import pytest

from issuance.errors import ReissueError
from issuance.models import ReissueRecord
from issuance.rules import reissue

REASONS = ReissueRecord.Reason.values


def test_the_rules_name_the_models_reason_codes():
    assert reissue.EMAIL_CHANGE == ReissueRecord.Reason.EMAIL_CHANGE
    assert reissue.OTHER == ReissueRecord.Reason.OTHER


@pytest.mark.parametrize(
    ("highest", "expected"), [(None, "002"), ("001", "002"), ("009", "010"), ("998", "999")]
)
def test_r16_the_next_branch_number(highest, expected):
    assert reissue.next_branch_number(highest) == expected


def test_r16_no_branch_number_after_999():
    with pytest.raises(ReissueError, match="999"):
        reissue.next_branch_number("999")


def test_r05_an_email_change_needs_a_new_and_different_address():
    check = {"reason": "email_change", "note": "", "reasons": REASONS}
    assert (
        reissue.check_request(new_email=" New@Example.JP ", current_email="a@example.jp", **check)
        == "new@example.jp"
    )
    for new in ("", "A@Example.jp"):
        with pytest.raises(ReissueError) as raised:
            reissue.check_request(new_email=new, current_email="a@example.jp", **check)
        assert raised.value.field == "new_email"


def test_r16_other_needs_a_note_and_a_reason_must_be_listed():
    with pytest.raises(ReissueError) as raised:
        reissue.check_request(
            reason="other", note=" ", new_email="", current_email="a@example.jp", reasons=REASONS
        )
    assert raised.value.field == "note"
    with pytest.raises(ReissueError) as raised:
        reissue.check_request(
            reason="whim", note="", new_email="", current_email="a@example.jp", reasons=REASONS
        )
    assert raised.value.field == "reason"
    assert (
        reissue.check_request(
            reason="pc_change",
            note="",
            new_email="x@example.jp",
            current_email="a@example.jp",
            reasons=REASONS,
        )
        == "a@example.jp"
    )
