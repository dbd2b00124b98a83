"""Business days of the desks and the year-end rule of the notice (R02).

A business day is Monday to Friday, not a Japanese public holiday and not 12/31 to 1/3
(the hours line of the manual: 月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）).
"""

from datetime import date, timedelta
from functools import cache

import holidays


@cache
def _japanese_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def is_year_end_closure(day: date) -> bool:
    return (day.month, day.day) in {(12, 31), (1, 1), (1, 2), (1, 3)}


def is_business_day(day: date) -> bool:
    return (
        day.weekday() < 5
        and day not in _japanese_holidays(day.year)
        and not is_year_end_closure(day)
    )


def last_business_day_of_december(year: int) -> date:
    day = date(year, 12, 31)
    while not is_business_day(day):
        day -= timedelta(days=1)
    return day


def registration_year(issued_on: date) -> int:
    """The year the customer enters for a notice issued on ``issued_on`` (R02).

    A user ID issued on the last business day of December is registered in the next year,
    although the notice prints the year of issue.
    """
    if issued_on == last_business_day_of_december(issued_on.year):
        return issued_on.year + 1
    return issued_on.year


def year_end_hint_applies(entered_year: int, today: date) -> bool:
    """Whether the year-end rule (R02) could explain a mismatch with ``entered_year``: a notice
    of that year may have been issued on its last business day of December, which is the case
    once that day has come."""
    return today >= last_business_day_of_december(entered_year)
