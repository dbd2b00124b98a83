from io import StringIO

import pytest
from django.core.management import call_command

from issuance.management.commands.seed_demo import (
    DEMO_CUSTOMERS,
    USERS_PER_CUSTOMER,
    demo_user_id,
)
from issuance.models import Customer, Notice

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_customers_and_prints_a_usable_notice():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert Customer.objects.count() == len(DEMO_CUSTOMERS)
    assert f"ユーザーID: {demo_user_id(1)}" in out.getvalue()
    call_command("seed_demo", stdout=StringIO())
    assert Customer.objects.count() == len(DEMO_CUSTOMERS)


def test_seed_demo_prints_a_fresh_notice_once_the_demo_ones_are_used():
    from django.utils import timezone

    call_command("seed_demo", stdout=StringIO())
    Notice.objects.update(used_at=timezone.now())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    fresh = demo_user_id(len(DEMO_CUSTOMERS) * USERS_PER_CUSTOMER + 1)  # the next one
    assert f"ユーザーID: {fresh}" in out.getvalue()
    assert Notice.objects.unused().count() == 1
