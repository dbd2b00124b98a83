"""issuance.scoping (R15), called directly: the customers of a desk (the lists' filter and the
aggregates' form), the staff scope, and the check every back-office service makes.

The admin's use of the scope (lists, search, 404s, exports) is in tests/backoffice/test_scoping.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from issuance import audit, roles, scoping
from issuance.models import (
    Certificate,
    Customer,
    InputLock,
    KihonetUser,
    MismatchAlert,
    Notice,
    ServiceDesk,
)
from tests.backoffice.conftest import ONBOARDING, desks_of_product_lines, make_certificate
from tests.backoffice.helpers import desk, make_staff
from tests.factories import make_customer, make_notice, make_user

pytestmark = pytest.mark.django_db

DESK_A = "団体保険課"  # 総合福祉団体定期保険, 団体信用生命保険
DESK_B = "名古屋法人サービス課"  # 総合医療保険(団体型), 拠出型企業年金保険, …


@pytest.fixture
def users(db) -> dict[str, KihonetUser]:
    """A customer user of desk A only, one of desk B only, one of both desks (two product lines,
    one served by each) and one of desk A's product line that has not started using yet."""
    lines = {
        "a": ("総合福祉団体定期保険",),
        "b": ("総合医療保険(団体型)",),
        "both": ("団体信用生命保険", "拠出型企業年金保険"),
    }
    found = {
        name: make_user(make_customer(product_lines=product_lines, started_using=True))
        for name, product_lines in lines.items()
    }
    found["new"] = make_user(make_customer(product_lines=("総合福祉団体定期保険",)))
    for user in found.values():
        make_notice(user)
        make_certificate(user)
    return found


def expected_codes(desk_name: str) -> set[str]:
    """From the contact table alone: the product desks their lines' customers, started or not;
    the before-start desk the customers that have not started."""
    table = desks_of_product_lines()
    customers = Customer.objects.prefetch_related("product_lines")
    if desk_name == ONBOARDING:
        return {c.kihonet_code for c in customers if not c.started_using}
    return {
        c.kihonet_code
        for c in customers
        if any(desk_name in table[line.name] for line in c.product_lines.all())
    }


def test_r15_the_filter_and_its_aggregate_form_give_each_desk_the_contact_tables_customers(
    users,
):
    for found in ServiceDesk.objects.all():
        expected = expected_codes(found.name)
        listed = Customer.objects.filter(scoping.desk_customer_filter(found, ""))
        aggregated = Customer.objects.filter(pk__in=scoping.desk_customers(found).values("pk"))
        assert {c.kihonet_code for c in listed} == expected, found.name
        assert {c.kihonet_code for c in aggregated} == expected, found.name
        assert listed.count() == len(expected)  # a customer of two served lines: one row


def test_r15_the_filter_reaches_the_customer_through_a_path(users):
    a, b = desk(DESK_A), desk(DESK_B)
    by_certificate = Certificate.objects.filter(scoping.desk_customer_filter(a, "user__customer"))
    assert {c.user_id for c in by_certificate} == {
        users["a"].pk,
        users["both"].pk,
        users["new"].pk,
    }
    # the querysets' for_desk are the same filter
    assert set(Certificate.objects.for_desk(a)) == set(by_certificate)
    assert {u.pk for u in KihonetUser.objects.for_desk(b)} == {users["b"].pk, users["both"].pk}
    assert {n.user_id for n in Notice.objects.for_desk(b)} == {users["b"].pk, users["both"].pk}
    onboarding = desk(ONBOARDING)
    assert list(KihonetUser.objects.for_desk(onboarding)) == [users["new"]]


def test_r15_the_staff_scope_of_a_clerk_a_supervisor_and_an_account_without_a_desk(users):
    clerk = make_staff(roles.CLERK, desk(DESK_A))
    supervisor = make_staff(roles.SUPERVISOR)
    no_desk = make_staff(roles.CLERK)
    assert scoping.staff_scope(clerk) == scoping.StaffScope(desk=desk(DESK_A))
    assert scoping.staff_scope(supervisor) == scoping.StaffScope(everything=True)
    assert scoping.staff_scope(no_desk).is_empty
    assert not scoping.is_supervisor(clerk) and scoping.is_supervisor(supervisor)

    assert set(scoping.users_in_scope(clerk)) == {users["a"], users["both"], users["new"]}
    assert set(scoping.users_in_scope(supervisor)) == set(users.values())
    assert not scoping.users_in_scope(no_desk).exists()

    assert scoping.staff_scope(make_staff(roles.CLERK, desk(DESK_A), is_active=False)).is_empty


def test_the_staff_scope_is_read_once_per_request(users, django_assert_num_queries):
    clerk = make_staff(roles.CLERK, desk(DESK_A))
    first = scoping.staff_scope(clerk)
    with django_assert_num_queries(0):
        assert scoping.staff_scope(clerk) is first


def test_the_dashboards_desk_is_a_clerks_own_and_a_supervisors_choice(users):
    clerk = make_staff(roles.CLERK, desk(DESK_A))
    supervisor = make_staff(roles.SUPERVISOR)
    other = desk(DESK_B)
    assert scoping.desk_in_view(clerk, str(other.pk)) == desk(DESK_A)
    assert scoping.desk_in_view(supervisor, str(other.pk)) == other
    assert scoping.desk_in_view(supervisor, None) is None
    assert scoping.desk_in_view(supervisor, "1 OR 1=1") is None


def test_r15_check_staff_may_for_a_clerk_of_desk_a_a_customer_of_desk_b_and_a_supervisor(users):
    clerk = audit.Actor.staff_user(make_staff(roles.CLERK, desk(DESK_A)))
    supervisor = audit.Actor.staff_user(make_staff(roles.SUPERVISOR))
    scoping.check_staff_may(clerk, roles.REISSUE, users["a"])
    scoping.check_staff_may(clerk, roles.REISSUE, users["both"])
    with pytest.raises(PermissionDenied, match="outside the desk"):
        scoping.check_staff_may(clerk, roles.REISSUE, users["b"])
    with pytest.raises(PermissionDenied, match=roles.REVOKE):  # a supervisor's permission
        scoping.check_staff_may(clerk, roles.REVOKE, users["a"])
    for user in users.values():
        scoping.check_staff_may(supervisor, roles.REVOKE, user)

    without_desk = audit.Actor.staff_user(make_staff(roles.CLERK))
    with pytest.raises(PermissionDenied):
        scoping.check_staff_may(without_desk, roles.REISSUE, users["a"])
    scoping.check_staff_may(audit.Actor.system("reminders"), roles.RESEND, users["b"])
    with pytest.raises(PermissionDenied, match="staff only"):
        scoping.check_staff_may(audit.Actor.customer("u@example.jp"), roles.RESEND, users["a"])


def test_r15_locks_and_mismatch_alerts_in_a_desks_scope(users):
    code_a, code_b = users["a"].customer.kihonet_code, users["b"].customer.kihonet_code
    until = timezone.now() + timedelta(minutes=30)
    person = InputLock.objects.create(
        kind=InputLock.Kind.PERSON, value=code_a, user_id=users["a"].user_id, locked_until=until
    )
    InputLock.objects.create(kind=InputLock.Kind.KIHONET_CODE, value=code_b, locked_until=until)
    address = InputLock.objects.create(
        kind=InputLock.Kind.IP_ADDRESS, value="192.0.2.1", locked_until=until
    )
    alert = MismatchAlert.objects.create(kihonet_code=code_a, failures=50, window_seconds=3600)
    MismatchAlert.objects.create(kihonet_code=code_b, failures=50, window_seconds=3600)

    scope = scoping.StaffScope(desk=desk(DESK_A))
    assert list(scope.input_locks(InputLock.objects.all())) == [person]
    assert list(scope.mismatch_alerts(MismatchAlert.objects.all())) == [alert]
    everything = scoping.StaffScope(everything=True)
    assert address in everything.input_locks(InputLock.objects.all())
    assert everything.mismatch_alerts(MismatchAlert.objects.all()).count() == 2
    assert not scoping.NO_SCOPE.input_locks(InputLock.objects.all()).exists()
