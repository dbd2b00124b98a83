"""R15: the contact table of the manual is in the database, row for row."""

import csv
from pathlib import Path

import pytest

from issuance.models import Customer, DeskContact, KihonetUser, ServiceDesk
from issuance.selectors.contacts import contact_table, desks_for_customer
from tests.factories import make_customer, make_user

pytestmark = pytest.mark.django_db

SPEC = Path(__file__).resolve().parents[2] / "data" / "contacts.csv"
HOURS = "月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）"


def spec_rows() -> set[tuple[str, str, str]]:
    with SPEC.open(encoding="utf-8") as handle:
        return {(r["product_line"], r["desk"], r["phone"]) for r in csv.DictReader(handle)}


def test_r15_every_row_of_the_contact_table_is_loaded():
    loaded = {
        (c.product_line.name, c.desk.name, c.phone)
        for c in DeskContact.objects.select_related("product_line", "desk")
    }
    assert loaded == spec_rows()
    assert len(spec_rows()) == 16


def test_r15_before_start_desk_and_hours():
    desk = ServiceDesk.objects.get(kind=ServiceDesk.Kind.ONBOARDING)
    assert (desk.name, desk.phone) == ("企保ネット導入サポートセンター", "0120-150-012")
    assert set(ServiceDesk.objects.values_list("hours", flat=True)) == {HOURS}


def test_r15_customer_before_start_calls_the_support_center():
    customer = make_customer(started_using=False)
    assert [(r.desk, r.phone) for r in desks_for_customer(customer)] == [
        ("企保ネット導入サポートセンター", "0120-150-012")
    ]


def test_r15_customer_after_start_calls_the_desks_of_its_product_lines():
    customer = make_customer(product_lines=("団体信用生命保険",), started_using=True)
    assert [(r.desk, r.phone) for r in desks_for_customer(customer)] == [
        ("団体保険課", "0120-338-688"),
        ("法人サービスセンター", "0120-563-928"),
    ]


def test_r15_contact_table_groups_the_merged_medical_cells():
    grouped = {line.name: [c.desk.name for c in contacts] for line, contacts in contact_table()}
    for line in ["3大疾病保障保険(団体型)", "(新)医療保障保険(団体型)", "総合医療保険(団体型)"]:
        assert grouped[line] == ["名古屋法人サービス課", "福岡法人サービス課"]


def test_desk_scoping_querysets():
    nagoya = ServiceDesk.objects.get(name="名古屋法人サービス課")
    onboarding = ServiceDesk.objects.get(kind=ServiceDesk.Kind.ONBOARDING)
    medical = make_customer(
        product_lines=("総合医療保険(団体型)", "拠出型企業年金保険"), started_using=True
    )
    group_life = make_customer(product_lines=("総合福祉団体定期保険",), started_using=True)
    newcomer = make_customer(product_lines=("総合医療保険(団体型)",), started_using=False)
    assert set(Customer.objects.for_desk(nagoya)) == {medical, newcomer}
    assert list(Customer.objects.for_desk(onboarding)) == [newcomer]
    user = make_user(group_life)
    assert user not in KihonetUser.objects.for_desk(nagoya)
