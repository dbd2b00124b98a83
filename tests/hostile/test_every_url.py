"""Every URL of the site, the API and the back office, fed hostile input, answers below 500.

The URLs come from the URL configuration itself (a new page is walked without touching this
file), each with real object IDs where it takes one. Each is requested as an anonymous
visitor, a clerk and a supervisor (signed in with the second factor), by GET with hostile query
strings (NUL, huge values, invalid UTF-8, wrong types, unknown filters) and by POST with
hostile bodies (a form of wrong types, deep JSON, JSON of wrong types, invalid UTF-8). The
lists, the autocomplete and the public pages also get each hostile parameter on its own, so
that one early refusal does not hide the others.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import audit, roles
from issuance.models import KihonetUser
from issuance.services import enrollment
from issuance.services.reissue import reissue_notice
from tests.backoffice.conftest import make_certificate
from tests.backoffice.helpers import desk, make_staff, staff_client
from tests.factories import make_customer, make_notice, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

LINE = "総合福祉団体定期保険"  # served by 団体保険課
HUGE = "9" * 20_000
# One query string of many hostile parameters at once (each on its own below as well).
WRONG_TYPES = (
    "q=%FF%FE%40&o=x.-9.abc&p=-1&e=1&all=&_popup=1&_to_field=password&status__exact=zz&status=zz"
    "&desk=abc&expiry=zz&user__id__exact=abc&id__in=a,b&serial=%FF%FE&term=%C3%28"
    "&app_label=zz&model_name=zz&field_name=zz&next=//evil.example/&token=x&form=x"
)
SINGLE_PARAMETERS = [
    ("q", "%00"),
    ("q", "%FF%FE"),
    ("q", HUGE),
    ("q", "taro@example.jp"),
    ("o", "99.-x"),
    ("p", "99999999999999999999"),
    ("e", "1"),
    ("_to_field", "password"),
    ("desk", "99999999999999999999"),
    ("user__id__exact", "99999999999999999999"),
    ("status__exact", "zz"),
    ("status", "zz"),
    ("not_after__gte", "not-a-date"),
    ("term", HUGE),
    # NUL in a filter value, the autocomplete term, a desk: refused before the database.
    ("status__exact", "%00"),
    ("status", "%00"),
    ("term", "U0%0000001"),
    ("desk", "1%00"),
]
# Where each parameter is also sent on its own: the lists of kihonet's own data, the
# autocomplete and the public pages that read the query string.
SINGLE_PARAMETER_TARGETS = {"admin:autocomplete", "admin:index", "issuance:renew-complete"}
RENDERS_A_PDF = {"admin:issuance_kihonetuser_print_pdf"}


FORM_OF_WRONG_TYPES = {
    "reason": ["zz", "pc_lost"],
    "note": "x" * 20_000,
    "new_email": "not-an-email",
    "email": "@" * 300,
    "action": ["delete_selected", "zz"],
    "_selected_action": ["abc", "99999999999999999999", "-1"],
    "select_across": "x",
    "index": "x",
    "post": "yes",
    "username": ["ｃｌｅｒｋ", "x" * 5000],
    "password": "x",
    "otp_token": "9" * 100,
    "kihonet_code": "１２３４５６７８９",
    "management_number": "%FF",
    "user_id": ["a", "b"],
    "year": "99999999999999999999",
    "branch_number": "-1",
    "csr": "-----BEGIN CERTIFICATE REQUEST-----",
    "certificate": "x",
    "desk": "abc",
    "customer": "99999999999999999999",
    "product_lines": ["x", "-1"],
    "name": HUGE,
    "_save": "1",
    "_continue": "1",
}
DEEP_JSON = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"
JSON_OF_WRONG_TYPES = '{"csr": 42, "certificate": [], "challenge": null, "kihonet_code": {"a": 1}}'
INVALID_UTF8 = b"q=%FF%FE&reason=\xff\xfe\xc3\x28&note=\xed\xa0\x80"


@dataclass
class Target:
    name: str
    url: str
    is_list: bool


def patterns(resolver: URLResolver, namespace: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from patterns(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", pattern


def sample_kwargs(pattern: URLPattern, objects: dict) -> dict:
    model_admin = getattr(pattern.callback, "model_admin", None)
    kwargs = {}
    for name in pattern.pattern.regex.groupindex:
        if name == "object_id" and model_admin is not None:
            first = model_admin.model._default_manager.order_by("pk").first()
            kwargs[name] = str(first.pk) if first else "1"
        else:
            kwargs[name] = str(objects.get(name, "1"))
    return kwargs


def targets(objects: dict) -> list[Target]:
    found = []
    for name, pattern in patterns(get_resolver()):
        kwargs = sample_kwargs(pattern, objects)
        own_list = name.startswith(("admin:issuance_", "admin:notifications_")) and name.endswith(
            "_changelist"
        )
        found.append(Target(name, reverse(name, kwargs=kwargs), own_list))
    found.append(Target("admin catch-all", "/admin/no/such/page/", False))
    return found


@pytest.fixture
def objects(db) -> dict:
    """A customer of 団体保険課 with a notice, a certificate, a reissue and an open enrollment."""
    user = make_user(make_customer(product_lines=(LINE,), started_using=True))
    notice = make_notice(user, used_at="2026-04-02T10:00:00+09:00")
    certificate = make_certificate(user)
    clerk = make_staff(roles.CLERK, desk("団体保険課"))
    reissue_notice(user=user, reason="pc_change", actor=audit.Actor.staff_user(clerk, "192.0.2.1"))
    fresh = make_notice(make_user(make_customer(product_lines=(LINE,))))
    enrollment.start_enrollment(
        enrollment.NoticeFields(
            kihonet_code=fresh.user.customer.kihonet_code,
            management_number=fresh.user.management_number,
            user_id=fresh.user.user_id,
            year=str(fresh.registration_year),
            branch_number=fresh.branch_number,
            email=fresh.email,
        ),
        ip_address="192.0.2.2",
    )
    return {
        "object_id": user.pk,
        "certificate_id": certificate.pk,
        "notice_id": notice.pk,
        "lock_id": 1,
        "content_type_id": ContentType.objects.get_for_model(KihonetUser).pk,
        "pk": TOTPDevice.objects.get(user=clerk).pk,
        "id": clerk.pk,
        "app_label": "issuance",
        "token": "unknown-token",
        "form": "pem",
        "encoded": "MAMCAQA=",
        "clerk": clerk,
    }


def requests_for(target: Target):
    """(description, method, path, extra arguments) of every hostile request to ``target``."""
    url = target.url
    yield "GET", "get", url, {}
    yield "GET wrong types", "get", f"{url}?{WRONG_TYPES}", {}
    yield "GET NUL", "get", f"{url}?q=%00&term=a%00b&serial=%00", {}
    if target.name in RENDERS_A_PDF:
        return  # a second or more each: its query string is all it reads
    yield "GET huge", "get", f"{url}?q={HUGE}&term={HUGE}&serial={HUGE}", {}
    if target.is_list or target.name in SINGLE_PARAMETER_TARGETS:
        for name, value in SINGLE_PARAMETERS:
            yield f"GET {name}={value[:20]}", "get", f"{url}?{name}={value}", {}
    if target.name == "admin:logout":
        return  # signing out is not hostile input; the session is kept for the next URLs
    yield "POST form", "post", url, {"data": FORM_OF_WRONG_TYPES}
    yield "POST deep JSON", "post", url, {"data": DEEP_JSON, "content_type": "application/json"}
    if not target.name.startswith("admin:"):  # the admin reads forms only
        yield (
            "POST JSON types",
            "post",
            url,
            {"data": JSON_OF_WRONG_TYPES, "content_type": "application/json"},
        )
    yield (
        "POST invalid UTF-8",
        "post",
        url,
        {"data": INVALID_UTF8, "content_type": "application/x-www-form-urlencoded"},
    )


def test_no_url_answers_5xx_to_hostile_input(objects, issuing_ca):
    started = time.monotonic()
    clerk = objects.pop("clerk")
    supervisor = make_staff(roles.SUPERVISOR, desk("団体保険課"))
    walked = targets(objects)
    assert len(walked) > 150  # the admin's URLs are in the walk
    clients = {
        "anonymous": Client(),
        "clerk": staff_client(clerk),
        "supervisor": staff_client(supervisor),
    }
    failures, sent, statuses, spent = [], 0, {}, {}
    for who, client in clients.items():
        for target in walked:
            for description, method, path, extra in requests_for(target):
                sent += 1
                before = time.monotonic()
                try:
                    response = getattr(client, method)(path, **extra)
                except Exception as error:  # the view raised: a 500 for the visitor
                    failures.append(
                        f"{who} {description} {target.name}: "
                        + "".join(traceback.format_exception_only(error)).strip()[:300]
                    )
                    continue
                finally:
                    spent[target.name] = spent.get(target.name, 0) + time.monotonic() - before
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    failures.append(f"{who} {description} {target.name}: {response.status_code}")
    elapsed = time.monotonic() - started
    slowest = sorted(spent.items(), key=lambda item: -item[1])[:5]
    print(f"\n{sent} requests to {len(walked)} URLs in {elapsed:.1f} s; statuses {statuses}")
    print("slowest: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest))
    assert not failures, f"{len(failures)} of {sent} answered 5xx:\n" + "\n".join(failures[:40])
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 100
