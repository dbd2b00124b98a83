"""``issuance.services.lockout.write_lock``: the lock and its audit event, both or neither (R03)."""

import pytest

from issuance.models import AuditEvent, InputLock
from issuance.services import lockout

pytestmark = pytest.mark.django_db


def test_r03_a_lock_whose_event_cannot_be_written_is_not_left_behind():
    with pytest.raises(TypeError):  # the event's detail cannot be stored as JSON
        lockout.write_lock(
            InputLock.Kind.PERSON,
            "80000009",
            "ABC1234",
            seconds=60,
            detail={"unstorable": object()},
        )
    assert not InputLock.objects.filter(value="80000009", user_id="ABC1234").exists()
    assert not AuditEvent.objects.filter(action="input_locked").exists()
