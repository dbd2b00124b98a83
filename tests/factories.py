"""Small builders of test data: plain functions with sensible defaults."""

from datetime import date
from itertools import count

from issuance.models import Customer, KihonetUser, Notice, ProductLine
from issuance.rules.business_days import registration_year

_numbers = count(1)


def make_customer(
    *,
    product_lines: tuple[str, ...] = ("総合福祉団体定期保険",),
    started_using: bool = False,
    **fields,
) -> Customer:
    number = next(_numbers)
    fields.setdefault("kihonet_code", f"{20000000 + number:08d}")
    fields.setdefault("name", f"テスト株式会社{number}")
    customer = Customer.objects.create(started_using=started_using, **fields)
    customer.product_lines.add(*ProductLine.objects.filter(name__in=product_lines))
    return customer


def make_user(customer: Customer | None = None, **fields) -> KihonetUser:
    number = next(_numbers)
    fields.setdefault("user_id", f"U{number:06d}")
    fields.setdefault("management_number", f"MN{number:08d}")
    fields.setdefault("email", f"user{number}@example.jp")
    return KihonetUser.objects.create(customer=customer or make_customer(), **fields)


def make_notice(
    user: KihonetUser | None = None, *, issued_on: date = date(2026, 4, 1), **fields
) -> Notice:
    user = user or make_user()
    fields.setdefault("branch_number", "001")
    fields.setdefault(
        "kind", Notice.Kind.NEW if fields["branch_number"] == "001" else Notice.Kind.REISSUE
    )
    fields.setdefault("printed_year", issued_on.year)
    fields.setdefault("registration_year", registration_year(issued_on))
    fields.setdefault("email", user.email)
    return Notice.objects.create(user=user, issued_on=issued_on, **fields)


def enrollment_fields(notice: Notice, **changes: str) -> dict[str, str]:
    """The six fields of ``notice`` (R01) as the enrollment page and API take them, with
    ``changes`` (a wrong one, say) in place of some."""
    user = notice.user
    return {
        "kihonet_code": user.customer.kihonet_code,
        "management_number": user.management_number,
        "user_id": user.user_id,
        "year": str(notice.registration_year),
        "branch_number": notice.branch_number,
        "email": notice.email,
        **changes,
    }
