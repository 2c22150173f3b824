"""Business days per country: Monday to Friday, less the country's public holidays.

Holidays come from the ``holidays`` package (national holidays only, no regional ones).
``add_business_days(x, n)`` is the rules' ``X + n bd`` (docs/domain.md): the n-th business
day strictly after ``x``, whatever day ``x`` itself is.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

_ONE_DAY = timedelta(days=1)
_SATURDAY = 5


class UnknownCountry(ValueError):
    """The country code names no country the holiday calendar knows."""


@lru_cache(maxsize=64)
def _public_holidays(country: str) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country)
    except NotImplementedError as exc:
        raise UnknownCountry(f"no public holiday calendar for country {country!r}") from exc


@lru_cache(maxsize=1024)
def _holiday_dates(country: str, year: int) -> frozenset[date]:
    # a plain set per year: planning checks days by the thousand, and a set lookup is
    # much cheaper than the holidays package's own membership test
    return frozenset(holidays.country_holidays(country, years=year))


def is_supported_country(country: str) -> bool:
    try:
        _public_holidays(country.upper())
    except UnknownCountry:
        return False
    return True


class BusinessCalendar:
    """The business days of one country."""

    def __init__(self, country: str = "FR") -> None:
        self.country = country.upper()
        self._holidays = _public_holidays(self.country)

    def is_holiday(self, day: date) -> bool:
        return day in _holiday_dates(self.country, day.year)

    def holiday_name(self, day: date) -> str | None:
        name = self._holidays.get(day)
        return str(name) if name is not None else None

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < _SATURDAY and day not in _holiday_dates(self.country, day.year)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        candidate = day + _ONE_DAY
        while not self.is_business_day(candidate):
            candidate += _ONE_DAY
        return candidate

    def previous_business_day(self, day: date) -> date:
        """The last business day strictly before ``day``."""
        candidate = day - _ONE_DAY
        while not self.is_business_day(candidate):
            candidate -= _ONE_DAY
        return candidate

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day strictly after ``day`` (n ≥ 1); ``day`` itself if n is 0."""
        if n < 0:
            raise ValueError("n must be zero or more; use previous_business_day to go back")
        for _ in range(n):
            day = self.next_business_day(day)
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """How many business days lie in the interval (start, end]."""
        count = 0
        day = start
        while day < end:
            day += _ONE_DAY
            if self.is_business_day(day):
                count += 1
        return count
