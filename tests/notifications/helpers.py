"""Certificates inserted directly, with plausible fields (the real CA is not needed here)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from issuance.models import Certificate, KihonetUser
from tests.factories import make_customer, make_user

JST = ZoneInfo("Asia/Tokyo")
PRODUCT_LINE = "団体信用生命保険"


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST)


def make_holder(**fields) -> KihonetUser:
    """A user of a customer that has started using the service, with one product line (R15)."""
    customer = make_customer(
        product_lines=(PRODUCT_LINE,),
        started_using=True,
        name=fields.pop("customer_name", "株式会社テスト商事"),
    )
    return make_user(customer, **fields)


def make_certificate(
    user: KihonetUser | None = None,
    *,
    not_after: datetime,
    renewed_from: Certificate | None = None,
    revoked: bool = False,
    email: str | None = None,
) -> Certificate:
    user = user or make_holder()
    revoked_at = timezone.now() if revoked else None
    return Certificate.objects.create(
        user=user,
        renewed_from=renewed_from,
        serial=secrets.token_hex(16).upper(),
        subject=f"CN={user.user_id},OU={user.management_number}",
        email=email or (renewed_from.email if renewed_from else user.email),
        not_before=not_after - timedelta(days=3 * 365),
        not_after=not_after,
        revoked_at=revoked_at,
        revocation_reason="keyCompromise" if revoked else "",
        pem="-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n",
        fingerprint=secrets.token_hex(32),
        public_key_fingerprint=secrets.token_hex(32),
    )


def renew(certificate: Certificate, *, revoked: bool = False) -> Certificate:
    """The renewal of ``certificate``: three years from about its 30-day point (R09)."""
    return make_certificate(
        certificate.user,
        not_after=certificate.not_after + timedelta(days=3 * 365 - 20),
        renewed_from=certificate,
        revoked=revoked,
    )
