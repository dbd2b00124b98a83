"""issuance.selectors.search: how a term staff type is read (whole or partial keys, full-width,
case) and the rows it finds, on the (scoped) queryset it is given."""

from __future__ import annotations

import pytest

from issuance.models import Certificate, KihonetUser
from issuance.selectors.search import SearchLookup, classify_search_term, search
from tests.backoffice.conftest import make_certificate
from tests.factories import make_customer, make_user

USER_PATHS = {
    "kihonet_code": "customer__kihonet_code",
    "user_id": "user_id",
    "management_number": "management_number",
    "email": "email",
    "name": "customer__name",
}


@pytest.fixture
def two_users(db) -> tuple[KihonetUser, KihonetUser]:
    first = make_user(
        make_customer(kihonet_code="31415926", name="デモ商事株式会社"),
        user_id="K7Q2X9A",
        management_number="MX12345678",
        email="sato@demo.example.jp",
    )
    second = make_user(
        make_customer(kihonet_code="27182818", name="別会社"),
        user_id="Z9Z9Z9Z",
        management_number="QQ87654321",
        email="kato@other.example.jp",
    )
    return first, second


def found(term: str, queryset=None) -> list[KihonetUser]:
    queryset = KihonetUser.objects.all() if queryset is None else queryset
    return list(search(queryset, term, USER_PATHS))


def test_search_terms_are_classified_by_their_form():
    kinds = classify_search_term
    exact, part = "exact", "icontains"
    assert kinds("12345678")["kihonet_code"].lookup == exact
    assert kinds("12345678")["management_number"].lookup == part  # 8 of its 10 characters
    assert kinds("12345678")["serial"].lookup == exact
    assert kinds("U000001")["user_id"].values == ("U000001",)
    assert kinds("u000001")["user_id"].values == ("u000001", "U000001")
    assert kinds("MN00000001")["management_number"].lookup == exact
    assert kinds(" Taro@Example.JP ")["email"].values == ("taro@example.jp",)
    assert set(kinds(" Taro@Example.JP ")) == {"email"}
    assert kinds("山田")["name"].values == ("山田",)
    assert kinds("ABC")["name"].values == ("ABC", "ＡＢＣ")  # the core system's full-width
    assert "name" not in kinds("1234")  # digits are keys, not names
    assert kinds("１２３４５６７８")["kihonet_code"].values == ("12345678",)  # full-width typed
    assert kinds("ｕ００００")["user_id"] == SearchLookup(part, ("u0000",))
    assert set(kinds("U0")) == {"name"}  # too short for a part of a key


def test_a_whole_key_a_part_and_a_full_width_term_find_their_user(two_users):
    first, _second = two_users
    for term in (
        "31415926",  # 企保ネットコード, whole
        "3141",  # …a part of it
        "k7q2x9a",  # ユーザーID in lower case
        "Ｋ７Ｑ２",  # a full-width part
        "MX12345678",  # 管理番号
        "Sato@Demo.Example.JP",  # the whole address, any case
        "demo.ex",  # a part of the address
        "デモ商事",  # a part of the company name
    ):
        assert found(term) == [first], term
    assert set(found("example.jp")) == set(two_users)  # a part both addresses share


def test_a_term_of_no_known_form_or_too_short_finds_nothing(two_users):
    assert found("") == []
    assert found("K7") == []  # two characters of a key: no part search
    assert found("@@") == []


def test_search_keeps_the_querysets_own_filter(two_users):
    _first, second = two_users
    only_second = KihonetUser.objects.filter(pk=second.pk)
    assert found("31415926", only_second) == []
    assert found("27182818", only_second) == [second]


def test_a_part_through_a_relation_is_found_on_the_related_table(two_users):
    first, _second = two_users
    mine = make_certificate(first)
    make_certificate(two_users[1])
    assert list(search(Certificate.objects.all(), "Q2X9", {"user_id": "user__user_id"})) == [mine]
