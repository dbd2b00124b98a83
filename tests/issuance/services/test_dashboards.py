"""issuance.services.dashboards: the dashboard figures kept in the (Redis) cache, warmed by the
``refresh_dashboards`` job so that a clerk never waits for them."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from issuance.models import ServiceDesk
from issuance.services import dashboards
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk
from tests.factories import make_customer, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(db) -> ServiceDesk:
    make_certificate(make_user(make_customer(started_using=True)))  # 総合福祉団体定期保険
    return desk("団体保険課")


def test_a_miss_computes_and_stores_then_the_cache_answers_without_a_query(
    served, redis_cache, django_assert_num_queries
):
    first = dashboards.cached_dashboard(served)
    assert first.valid == 1
    with django_assert_num_queries(0):
        assert dashboards.cached_dashboard(served) == first
    make_certificate(make_user(make_customer(started_using=True)))
    assert dashboards.cached_dashboard(served).valid == 1  # the cached figures, for 5 minutes
    assert dashboards.warm_dashboard(served).valid == 2
    assert dashboards.cached_dashboard(served).valid == 2


def test_warming_every_desk_fills_the_cache_for_each_desk_and_for_all(
    served, redis_cache, django_assert_num_queries
):
    every = [None, *ServiceDesk.objects.all()]
    assert dashboards.warm_all_dashboards() == len(every)
    with django_assert_num_queries(0):
        for found in every:
            dashboards.cached_dashboard(found)
    cache.clear()
    assert dashboards.cached_dashboard(None).valid == 1  # computed again after a flush
