"""Loads a small demo set and prints the six fields of one notice that can still be used."""

from datetime import date

from django.core.management.base import BaseCommand
from django.db import transaction

from issuance.models import Customer, KihonetUser, Notice, ProductLine
from issuance.rules.business_days import registration_year
from issuance.selectors.contacts import site_url

DEMO_CUSTOMERS = [
    ("10000001", "デモ商事株式会社", ["総合福祉団体定期保険", "団体信用生命保険"]),
    ("10000002", "サンプル工業株式会社", ["(新)団体定期保険"]),
    ("10000003", "見本物産株式会社", ["3大疾病保障保険(団体型)", "拠出型企業年金保険"]),
    ("10000004", "試験運輸株式会社", ["総合医療保険(団体型)"]),
]
USERS_PER_CUSTOMER = 3
DEMO_ISSUED_ON = date(2026, 4, 1)


def demo_user_id(number: int) -> str:
    """The user ID of the ``number``-th demo user (from 1)."""
    return f"D{number:06d}"


def _demo_user(customer: Customer, number: int) -> KihonetUser:
    user, _ = KihonetUser.objects.get_or_create(
        user_id=demo_user_id(number),
        defaults={
            "customer": customer,
            "management_number": f"KN{int(customer.kihonet_code) % 1000:03d}{number:05d}",
            "email": f"user{number}@example.jp",
        },
    )
    Notice.objects.get_or_create(
        user=user,
        branch_number="001",
        defaults={
            "printed_year": DEMO_ISSUED_ON.year,
            "registration_year": registration_year(DEMO_ISSUED_ON),
            "issued_on": DEMO_ISSUED_ON,
            "email": user.email,
        },
    )
    return user


class Command(BaseCommand):
    help = "Loads demo customers, users and notices, and prints one usable notice."

    @transaction.atomic
    def handle(self, *args, **options):
        number = 0
        for code, name, lines in DEMO_CUSTOMERS:
            customer, _ = Customer.objects.get_or_create(kihonet_code=code, defaults={"name": name})
            customer.product_lines.add(*ProductLine.objects.filter(name__in=lines))
            for _ in range(USERS_PER_CUSTOMER):
                number += 1
                _demo_user(customer, number)
        notice = Notice.objects.unused().filter(user__user_id__startswith="D").first()
        while notice is None:
            number += 1
            customer = Customer.objects.get(kihonet_code=DEMO_CUSTOMERS[0][0])
            notice = _demo_user(customer, number).notices.unused().first()
        self._print_notice(notice)

    def _print_notice(self, notice: Notice) -> None:
        user = notice.user
        self.stdout.write("デモ用「ユーザーIDのお知らせ」:")
        for label, value in [
            ("企保ネットコード", user.customer.kihonet_code),
            ("管理番号", user.management_number),
            ("ユーザーID", user.user_id),
            ("年", str(notice.registration_year)),
            ("枝番", notice.branch_number),
            ("Eメールアドレス", notice.email),
        ]:
            self.stdout.write(f"  {label}: {value}")
        site = site_url()
        self.stdout.write(f"  URL ⇒ {site['site_url']}")
        if site["site_is_https"]:
            self.stdout.write("  （httpsの「s」の入力漏れにご注意ください）")
