"""issuance.selectors.certificates: a certificate's status as the client tool sees it (R12),
its renewal, and the enrollment of a token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from issuance import audit, tokens
from issuance.models import Enrollment
from issuance.selectors.certificates import (
    certificate_status,
    enrolled_certificate,
    has_renewal,
    open_enrollment,
    renewed_certificate,
)
from issuance.services.certificates import revoke_certificate
from tests.backoffice.conftest import make_certificate
from tests.factories import make_notice, make_user

pytestmark = pytest.mark.django_db


def test_r12_the_status_is_valid_renewed_revoked_or_expired_and_none_for_a_stranger():
    user = make_user()
    now = timezone.now()
    valid = make_certificate(user, days_left=400)
    old = make_certificate(user, days_left=20)
    renewal = make_certificate(user, days_left=1115, renewed_from=old)
    expired = make_certificate(user, days_left=-1)
    renewed_then_expired = make_certificate(user, days_left=-3)
    make_certificate(user, days_left=1000, renewed_from=renewed_then_expired)
    gone = make_certificate(user, days_left=300)
    revoke_certificate(gone, reason="keyCompromise", actor=audit.Actor.system("test"))

    assert certificate_status(valid.serial, now) == "valid"
    assert certificate_status(old.serial, now) == "renewed"
    assert certificate_status(renewal.serial, now) == "valid"
    assert certificate_status(expired.serial, now) == "expired"
    assert certificate_status(renewed_then_expired.serial, now) == "expired"  # expired first
    assert certificate_status(gone.serial, now) == "revoked"
    assert certificate_status("ABCDEF0123", now) is None
    assert has_renewal(old) and not has_renewal(valid)


def test_a_renewed_certificate_is_found_by_its_serial_in_any_case():
    user = make_user()
    old = make_certificate(user, days_left=20)
    renewal = make_certificate(user, days_left=1115, renewed_from=old)
    assert renewed_certificate(renewal.serial.lower()) == renewal
    assert renewed_certificate(old.serial) is None  # a first certificate is not a renewal


def test_an_enrollment_is_open_until_it_expires_or_gives_its_certificate():
    notice = make_notice()
    token = "a token of the test"
    enrollment = Enrollment.objects.create(
        notice=notice,
        email=notice.email,
        token_digest=tokens.digest(token),
        expires_at=timezone.now() + timedelta(minutes=15),
    )
    assert open_enrollment(token) == enrollment
    assert open_enrollment("another token") is None and enrolled_certificate(token) is None
    enrollment.certificate = make_certificate(notice.user)
    enrollment.save()
    assert open_enrollment(token) is None
    assert enrolled_certificate(token) == enrollment.certificate
    Enrollment.objects.filter(pk=enrollment.pk).update(
        certificate=None, expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert open_enrollment(token) is None
