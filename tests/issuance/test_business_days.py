"""R02: the year-end rule of the notice, on the business days of the desks."""

from datetime import date

import pytest

from issuance.rules.business_days import (
    is_business_day,
    last_business_day_of_december,
    registration_year,
)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 27), True),  # a Friday
        (date(2026, 11, 28), False),  # a Saturday
        (date(2026, 11, 23), False),  # 勤労感謝の日
        (date(2026, 12, 31), False),  # 12/31 to 1/3 are closed
        (date(2027, 1, 4), True),
        (date(2027, 1, 1), False),
    ],
)
def test_r02_business_days_follow_the_hours_line(day, expected):
    assert is_business_day(day) is expected


def test_r02_year_whose_dec_30_is_a_weekday_registers_dec_30_in_the_next_year():
    assert date(2026, 12, 30).weekday() == 2  # Wednesday
    assert last_business_day_of_december(2026) == date(2026, 12, 30)
    assert registration_year(date(2026, 12, 30)) == 2027


@pytest.mark.parametrize(
    ("year", "last_business_day"),
    [
        (2023, date(2023, 12, 29)),  # 12/30 is a Saturday
        (2029, date(2029, 12, 28)),
    ],  # 12/30 is a Sunday
)
def test_r02_year_whose_dec_30_falls_on_a_weekend_uses_the_friday_before(year, last_business_day):
    assert date(year, 12, 30).weekday() in (5, 6)
    assert last_business_day_of_december(year) == last_business_day
    assert registration_year(last_business_day) == year + 1
    assert registration_year(date(year, 12, 30)) == year


@pytest.mark.parametrize(
    "day", [date(2026, 12, 29), date(2026, 12, 1), date(2026, 12, 31), date(2026, 1, 5)]
)
def test_r02_other_december_days_register_in_the_printed_year(day):
    assert registration_year(day) == day.year
