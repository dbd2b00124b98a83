from io import StringIO

import pytest
from django.core.management import call_command

from issuance.models import Customer, Notice

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_customers_and_prints_a_usable_notice():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert Customer.objects.count() == 4
    assert "ユーザーID: D000001" in out.getvalue()
    call_command("seed_demo", stdout=StringIO())
    assert Customer.objects.count() == 4


def test_seed_demo_prints_a_fresh_notice_once_the_demo_ones_are_used():
    from django.utils import timezone

    call_command("seed_demo", stdout=StringIO())
    Notice.objects.update(used_at=timezone.now())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "ユーザーID: D000013" in out.getvalue()
    assert Notice.objects.unused().count() == 1
