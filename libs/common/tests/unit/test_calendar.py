"""Business days per country: public holidays, weekends, and ``X + n bd`` arithmetic."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

import pytest
from dateutil.easter import easter  # type: ignore[import-untyped]

from relance.common.calendar import BusinessCalendar, UnknownCountry, is_supported_country

ONE_DAY = timedelta(days=1)
FRANCE = BusinessCalendar("FR")
GERMANY = BusinessCalendar("DE")
YEARS = range(2024, 2031)

# Written by hand from published calendars, not computed: the Easter-based holidays move.
EASTER_SUNDAY = {
    2024: date(2024, 3, 31),
    2025: date(2025, 4, 20),
    2026: date(2026, 4, 5),
    2027: date(2027, 3, 28),
    2028: date(2028, 4, 16),
    2029: date(2029, 4, 1),
    2030: date(2030, 4, 21),
}
# year: (Easter Monday, Ascension Thursday, Whit Monday)
EASTER_BASED_FRENCH_HOLIDAYS = {
    2024: (date(2024, 4, 1), date(2024, 5, 9), date(2024, 5, 20)),
    2025: (date(2025, 4, 21), date(2025, 5, 29), date(2025, 6, 9)),
    2026: (date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25)),
    2027: (date(2027, 3, 29), date(2027, 5, 6), date(2027, 5, 17)),
    2028: (date(2028, 4, 17), date(2028, 5, 25), date(2028, 6, 5)),
    2029: (date(2029, 4, 2), date(2029, 5, 10), date(2029, 5, 21)),
    2030: (date(2030, 4, 22), date(2030, 5, 30), date(2030, 6, 10)),
}
GOOD_FRIDAY = {
    2024: date(2024, 3, 29),
    2025: date(2025, 4, 18),
    2026: date(2026, 4, 3),
    2027: date(2027, 3, 26),
    2028: date(2028, 4, 14),
    2029: date(2029, 3, 30),
    2030: date(2030, 4, 19),
}
FRENCH_FIXED_HOLIDAYS = {
    "new_year": (1, 1),
    "labour_day": (5, 1),
    "victory_in_europe_day": (5, 8),
    "bastille_day": (7, 14),
    "assumption": (8, 15),
    "all_saints": (11, 1),
    "armistice": (11, 11),
    "christmas": (12, 25),
}
GERMAN_FIXED_HOLIDAYS = {
    "new_year": (1, 1),
    "labour_day": (5, 1),
    "german_unity_day": (10, 3),
    "christmas": (12, 25),
    "second_day_of_christmas": (12, 26),
}


def days_from(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def french_public_holidays(year: int) -> set[date]:
    easter_monday, ascension, whit_monday = EASTER_BASED_FRENCH_HOLIDAYS[year]
    fixed = {date(year, month, day) for month, day in FRENCH_FIXED_HOLIDAYS.values()}
    return fixed | {easter_monday, ascension, whit_monday}


def german_public_holidays(year: int) -> set[date]:
    easter_monday, ascension, whit_monday = EASTER_BASED_FRENCH_HOLIDAYS[year]
    fixed = {date(year, month, day) for month, day in GERMAN_FIXED_HOLIDAYS.values()}
    return fixed | {GOOD_FRIDAY[year], easter_monday, ascension, whit_monday}


def expected_business_days(holidays_of_year: dict[int, set[date]]) -> list[date]:
    """Mon-Fri less the given holidays, over the years given: the oracle for the calendar."""
    return [
        day
        for year, holidays_ in holidays_of_year.items()
        for day in days_from(date(year, 1, 1), date(year, 12, 31))
        if day.weekday() < 5 and day not in holidays_
    ]


FRENCH_BUSINESS_DAYS = expected_business_days({y: french_public_holidays(y) for y in YEARS})
GERMAN_BUSINESS_DAYS = expected_business_days({y: german_public_holidays(y) for y in YEARS})


# --- the hand-written reference values themselves ------------------------------------------


@pytest.mark.parametrize("year", YEARS)
def test_hand_written_easter_sundays_agree_with_dateutil(year: int) -> None:
    assert EASTER_SUNDAY[year] == easter(year)
    assert EASTER_SUNDAY[year].weekday() == 6


@pytest.mark.parametrize("year", YEARS)
def test_hand_written_easter_based_dates_are_easter_plus_1_39_50_days(year: int) -> None:
    sunday = EASTER_SUNDAY[year]
    assert EASTER_BASED_FRENCH_HOLIDAYS[year] == (
        sunday + timedelta(days=1),
        sunday + timedelta(days=39),
        sunday + timedelta(days=50),
    )
    assert GOOD_FRIDAY[year] == sunday - timedelta(days=2)


# --- French public holidays ----------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("holiday", FRENCH_FIXED_HOLIDAYS)
def test_fixed_date_french_holiday_is_a_holiday_and_not_a_business_day(
    holiday: str, year: int
) -> None:
    month, day_of_month = FRENCH_FIXED_HOLIDAYS[holiday]
    day = date(year, month, day_of_month)
    assert FRANCE.is_holiday(day)
    assert not FRANCE.is_business_day(day)


@pytest.mark.parametrize("year", YEARS)
def test_easter_monday_is_not_a_business_day_in_france(year: int) -> None:
    easter_monday = EASTER_BASED_FRENCH_HOLIDAYS[year][0]
    assert easter_monday.weekday() == 0
    assert FRANCE.is_holiday(easter_monday)
    assert not FRANCE.is_business_day(easter_monday)


@pytest.mark.parametrize("year", YEARS)
def test_ascension_thursday_is_not_a_business_day_in_france(year: int) -> None:
    ascension = EASTER_BASED_FRENCH_HOLIDAYS[year][1]
    assert ascension.weekday() == 3
    assert FRANCE.is_holiday(ascension)
    assert not FRANCE.is_business_day(ascension)


@pytest.mark.parametrize("year", YEARS)
def test_whit_monday_is_not_a_business_day_in_france(year: int) -> None:
    whit_monday = EASTER_BASED_FRENCH_HOLIDAYS[year][2]
    assert whit_monday.weekday() == 0
    assert FRANCE.is_holiday(whit_monday)
    assert not FRANCE.is_business_day(whit_monday)


@pytest.mark.parametrize("year", YEARS)
def test_easter_sunday_itself_is_not_a_business_day_in_france(year: int) -> None:
    assert not FRANCE.is_business_day(EASTER_SUNDAY[year])


@pytest.mark.parametrize("year", YEARS)
def test_the_day_after_easter_monday_is_a_business_day_in_france(year: int) -> None:
    assert FRANCE.is_business_day(EASTER_BASED_FRENCH_HOLIDAYS[year][0] + ONE_DAY)


@pytest.mark.parametrize("year", YEARS)
def test_good_friday_is_a_business_day_in_france(year: int) -> None:
    assert not FRANCE.is_holiday(GOOD_FRIDAY[year])
    assert FRANCE.is_business_day(GOOD_FRIDAY[year])


@pytest.mark.parametrize("year", YEARS)
def test_french_holidays_of_a_year_are_exactly_the_eleven_public_holidays(year: int) -> None:
    found = {d for d in days_from(date(year, 1, 1), date(year, 12, 31)) if FRANCE.is_holiday(d)}
    assert found == french_public_holidays(year)
    assert len(found) == 11


def test_french_business_days_are_exactly_weekdays_less_public_holidays_2024_to_2030() -> None:
    days = days_from(date(2024, 1, 1), date(2030, 12, 31))
    found = [day for day in days if FRANCE.is_business_day(day)]
    assert found == FRENCH_BUSINESS_DAYS


@pytest.mark.parametrize(
    ("year", "business_days"),
    # 2024: 262 weekdays, of which 10 are holidays (14 July is a Sunday)
    [(2024, 252), (2025, 261 - 10), (2026, 261 - 9)],
)
def test_number_of_french_business_days_in_a_year(year: int, business_days: int) -> None:
    assert FRANCE.business_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == (
        business_days
    )


@pytest.mark.parametrize(
    "day",
    [
        date(2024, 12, 24),  # Christmas Eve
        date(2024, 12, 26),  # Boxing Day is a holiday in Germany, not in France
        date(2024, 12, 31),  # New Year's Eve
        date(2025, 1, 2),
        date(2024, 5, 10),  # the Friday of the Ascension bridge
        date(2024, 5, 7),
        date(2025, 7, 15),
        date(2025, 8, 14),
    ],
)
def test_ordinary_weekday_is_a_business_day_in_france(day: date) -> None:
    assert day.weekday() < 5
    assert not FRANCE.is_holiday(day)
    assert FRANCE.is_business_day(day)


# --- weekends ------------------------------------------------------------------------------


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_saturdays_and_sundays_are_never_business_days(calendar: BusinessCalendar) -> None:
    weekend_days = [d for d in days_from(date(2024, 1, 1), date(2030, 12, 31)) if d.weekday() >= 5]
    assert len(weekend_days) == 730
    assert not any(calendar.is_business_day(d) for d in weekend_days)


def test_ordinary_saturday_is_not_a_holiday_though_not_a_business_day() -> None:
    saturday = date(2025, 3, 15)
    assert saturday.weekday() == 5
    assert not FRANCE.is_holiday(saturday)
    assert not FRANCE.is_business_day(saturday)


@pytest.mark.parametrize(
    "holiday",
    [
        date(2024, 7, 14),  # Sunday
        date(2025, 11, 1),  # Saturday
        date(2026, 8, 15),  # Saturday
        date(2026, 11, 1),  # Sunday
        date(2027, 12, 25),  # Saturday
        date(2028, 1, 1),  # Saturday
    ],
)
def test_holiday_on_a_weekend_is_still_a_holiday_and_is_not_moved_to_monday(
    holiday: date,
) -> None:
    assert holiday.weekday() >= 5
    assert FRANCE.is_holiday(holiday)
    assert not FRANCE.is_business_day(holiday)
    following_monday = holiday + timedelta(days=7 - holiday.weekday())
    assert following_monday.weekday() == 0
    assert not FRANCE.is_holiday(following_monday)
    assert FRANCE.is_business_day(following_monday)


def test_holiday_on_a_sunday_costs_no_business_day() -> None:
    # 14 July 2024 is a Sunday: Friday 12 to Monday 15 is one business day, as any weekend
    assert FRANCE.business_days_between(date(2024, 7, 12), date(2024, 7, 15)) == 1
    assert FRANCE.add_business_days(date(2024, 7, 12), 1) == date(2024, 7, 15)


# --- next / previous business day ----------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 3, 10), date(2025, 3, 11)),  # Monday -> Tuesday
        (date(2025, 3, 14), date(2025, 3, 17)),  # Friday -> Monday
        (date(2025, 3, 15), date(2025, 3, 17)),  # Saturday -> Monday
        (date(2025, 3, 16), date(2025, 3, 17)),  # Sunday -> Monday
        (date(2024, 3, 29), date(2024, 4, 2)),  # Friday before Easter Monday -> Tuesday
        (date(2024, 5, 7), date(2024, 5, 10)),  # 8 May (Wed) and Ascension (Thu) in a row
        (date(2024, 5, 8), date(2024, 5, 10)),  # from a holiday
        (date(2024, 10, 31), date(2024, 11, 4)),  # 1 Nov on a Friday -> Monday
        (date(2024, 12, 24), date(2024, 12, 26)),
        (date(2024, 12, 31), date(2025, 1, 2)),  # across the year end
        (date(2025, 12, 31), date(2026, 1, 2)),
        (date(2026, 12, 31), date(2027, 1, 4)),  # 1 Jan 2027 is a Friday
        (date(2027, 12, 31), date(2028, 1, 3)),  # 1 Jan 2028 is a Saturday
    ],
)
def test_next_business_day_in_france(day: date, expected: date) -> None:
    assert FRANCE.next_business_day(day) == expected


def test_next_business_day_is_strictly_after_a_business_day() -> None:
    tuesday = date(2025, 3, 11)
    assert FRANCE.is_business_day(tuesday)
    assert FRANCE.next_business_day(tuesday) == date(2025, 3, 12)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 3, 12), date(2025, 3, 11)),  # Wednesday -> Tuesday
        (date(2025, 3, 17), date(2025, 3, 14)),  # Monday -> Friday
        (date(2025, 3, 16), date(2025, 3, 14)),  # Sunday -> Friday
        (date(2024, 4, 2), date(2024, 3, 29)),  # Tuesday after Easter Monday -> Good Friday
        (date(2024, 4, 1), date(2024, 3, 29)),  # from Easter Monday itself
        (date(2024, 5, 10), date(2024, 5, 7)),  # over 8 May and Ascension
        (date(2025, 1, 2), date(2024, 12, 31)),  # across the year end
        (date(2025, 1, 1), date(2024, 12, 31)),
        (date(2028, 1, 3), date(2027, 12, 31)),
        (date(2027, 1, 4), date(2026, 12, 31)),
    ],
)
def test_previous_business_day_in_france(day: date, expected: date) -> None:
    assert FRANCE.previous_business_day(day) == expected


# --- X + n bd ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2025, 3, 10), 1, date(2025, 3, 11)),
        (date(2025, 3, 10), 5, date(2025, 3, 17)),  # a whole week later
        (date(2025, 3, 14), 1, date(2025, 3, 17)),  # Friday + 1 bd is Monday
        (date(2025, 3, 15), 1, date(2025, 3, 17)),  # from a Saturday
        (date(2025, 3, 16), 5, date(2025, 3, 21)),  # from a Sunday
        (date(2024, 4, 30), 5, date(2024, 5, 10)),  # over 1 May, 8 May and Ascension
        (date(2024, 12, 24), 3, date(2024, 12, 30)),  # over Christmas
        (date(2024, 12, 24), 5, date(2025, 1, 2)),  # over Christmas and New Year
        (date(2024, 12, 30), 1, date(2024, 12, 31)),
        (date(2024, 12, 30), 2, date(2025, 1, 2)),
        (date(2024, 12, 31), 1, date(2025, 1, 2)),
        (date(2024, 12, 31), 5, date(2025, 1, 8)),
        (date(2025, 12, 31), 2, date(2026, 1, 5)),
        (date(2027, 12, 31), 1, date(2028, 1, 3)),
        (date(2025, 1, 1), 1, date(2025, 1, 2)),  # from the holiday itself
        # the escalations of a due date of Friday 20 December 2024: D + 5, + 10, + 15 bd
        (date(2024, 12, 20), 5, date(2024, 12, 30)),
        (date(2024, 12, 20), 10, date(2025, 1, 7)),
        (date(2024, 12, 20), 15, date(2025, 1, 14)),
    ],
)
def test_add_business_days_in_france(day: date, n: int, expected: date) -> None:
    assert FRANCE.add_business_days(day, n) == expected


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 3, 10),  # a business day
        date(2025, 3, 15),  # a Saturday
        date(2025, 3, 16),  # a Sunday
        date(2025, 5, 1),  # a holiday
        date(2024, 12, 31),
    ],
)
def test_adding_zero_business_days_returns_the_day_itself_whatever_it_is(day: date) -> None:
    assert FRANCE.add_business_days(day, 0) == day


@pytest.mark.parametrize("n", [-1, -2, -15])
def test_adding_a_negative_number_of_business_days_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="zero or more"):
        FRANCE.add_business_days(date(2025, 3, 10), n)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2025, 3, 10), date(2025, 3, 10), 0),  # empty interval
        (date(2025, 3, 10), date(2025, 3, 11), 1),  # the end counts
        (date(2025, 3, 9), date(2025, 3, 10), 1),  # from a Sunday
        (date(2025, 3, 10), date(2025, 3, 17), 5),  # the start does not count
        (date(2025, 3, 14), date(2025, 3, 16), 0),  # Friday to Sunday
        (date(2024, 12, 20), date(2025, 1, 10), 13),  # over Christmas and New Year
        (date(2024, 4, 30), date(2024, 5, 12), 5),  # May bridges
        (date(2025, 3, 17), date(2025, 3, 10), 0),  # end before start: empty
    ],
)
def test_business_days_between_counts_the_interval_open_at_start_closed_at_end(
    start: date, end: date, expected: int
) -> None:
    assert FRANCE.business_days_between(start, end) == expected


# --- Germany -------------------------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
def test_good_friday_is_a_holiday_in_germany_but_not_in_france(year: int) -> None:
    good_friday = GOOD_FRIDAY[year]
    assert GERMANY.is_holiday(good_friday)
    assert not GERMANY.is_business_day(good_friday)
    assert FRANCE.is_business_day(good_friday)


@pytest.mark.parametrize("year", YEARS)
def test_german_unity_day_is_a_holiday_in_germany_but_not_in_france(year: int) -> None:
    unity_day = date(year, 10, 3)
    assert GERMANY.is_holiday(unity_day)
    assert not GERMANY.is_business_day(unity_day)
    assert not FRANCE.is_holiday(unity_day)


@pytest.mark.parametrize("year", YEARS)
def test_second_day_of_christmas_is_a_holiday_in_germany_but_not_in_france(year: int) -> None:
    boxing_day = date(year, 12, 26)
    assert GERMANY.is_holiday(boxing_day)
    assert not GERMANY.is_business_day(boxing_day)
    assert not FRANCE.is_holiday(boxing_day)


@pytest.mark.parametrize(
    "day",
    [
        date(2024, 5, 8),  # Wednesday
        date(2025, 5, 8),  # Thursday
        date(2026, 5, 8),  # Friday
        date(2025, 7, 14),  # Monday
        date(2026, 7, 14),  # Tuesday
        date(2024, 8, 15),  # Thursday (a holiday only in some Länder)
        date(2024, 11, 1),  # Friday (a holiday only in some Länder)
        date(2024, 11, 11),  # Monday
    ],
)
def test_french_only_holiday_on_a_weekday_is_a_business_day_in_germany(day: date) -> None:
    assert day.weekday() < 5
    assert FRANCE.is_holiday(day)
    assert not GERMANY.is_holiday(day)
    assert GERMANY.is_business_day(day)


@pytest.mark.parametrize("year", YEARS)
def test_german_holidays_of_a_year_are_exactly_the_nine_national_holidays(year: int) -> None:
    found = {d for d in days_from(date(year, 1, 1), date(year, 12, 31)) if GERMANY.is_holiday(d)}
    assert found == german_public_holidays(year)


def test_german_business_days_are_exactly_weekdays_less_national_holidays_2024_to_2030() -> None:
    days = days_from(date(2024, 1, 1), date(2030, 12, 31))
    assert [day for day in days if GERMANY.is_business_day(day)] == GERMAN_BUSINESS_DAYS


def test_the_same_dates_give_different_business_days_in_france_and_germany() -> None:
    # Tuesday 7 May 2024 + 1 bd: 8 May and Ascension are closed in France, 8 May is open in DE
    assert FRANCE.add_business_days(date(2024, 5, 7), 1) == date(2024, 5, 10)
    assert GERMANY.add_business_days(date(2024, 5, 7), 1) == date(2024, 5, 8)
    # Christmas Eve 2024 + 5 bd: Germany also closes on 26 December
    assert FRANCE.add_business_days(date(2024, 12, 24), 5) == date(2025, 1, 2)
    assert GERMANY.add_business_days(date(2024, 12, 24), 5) == date(2025, 1, 3)
    # Thursday before Easter 2025 + 1 bd: Good Friday is closed in Germany only
    assert FRANCE.add_business_days(date(2025, 4, 17), 1) == date(2025, 4, 18)
    assert GERMANY.add_business_days(date(2025, 4, 17), 1) == date(2025, 4, 22)


def test_number_of_german_business_days_in_2024() -> None:
    # 262 weekdays less 9 national holidays, all on weekdays in 2024
    assert GERMANY.business_days_between(date(2023, 12, 31), date(2024, 12, 31)) == 253


# --- countries -----------------------------------------------------------------------------


def test_default_calendar_is_france() -> None:
    calendar = BusinessCalendar()
    assert calendar.country == "FR"
    assert not calendar.is_business_day(date(2025, 7, 14))


def test_lowercase_country_code_gives_the_same_calendar() -> None:
    calendar = BusinessCalendar("de")
    assert calendar.country == "DE"
    assert calendar.is_holiday(GOOD_FRIDAY[2025])


@pytest.mark.parametrize("country", ["XX", "ZZ", ""])
def test_unknown_country_is_refused_with_unknown_country(country: str) -> None:
    with pytest.raises(UnknownCountry, match="no public holiday calendar"):
        BusinessCalendar(country)


def test_unknown_country_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="XX"):
        BusinessCalendar("XX")


@pytest.mark.parametrize("country", ["FR", "DE", "BE", "GB"])
def test_known_country_is_supported(country: str) -> None:
    assert is_supported_country(country)


@pytest.mark.parametrize("country", ["XX", "ZZ", ""])
def test_unknown_country_is_not_supported(country: str) -> None:
    assert not is_supported_country(country)


@pytest.mark.parametrize("country", ["fr", "de", "Fr"])
def test_is_supported_country_agrees_with_business_calendar_on_lowercase_codes(
    country: str,
) -> None:
    BusinessCalendar(country)  # accepted: the calendar upper-cases the code
    assert is_supported_country(country)


def test_holiday_name_names_holidays_only() -> None:
    name = FRANCE.holiday_name(date(2025, 12, 25))
    assert isinstance(name, str)
    assert name
    assert FRANCE.holiday_name(date(2025, 12, 24)) is None
    assert FRANCE.holiday_name(date(2025, 3, 15)) is None  # a plain Saturday


# --- invariants over whole years -----------------------------------------------------------

INVARIANT_DAYS = days_from(date(2024, 1, 1), date(2025, 12, 31))
ORACLE_DAYS = days_from(date(2024, 1, 1), date(2027, 12, 31))


@pytest.mark.parametrize(
    ("calendar", "n"),
    [(FRANCE, n) for n in (1, 2, 5, 15)] + [(GERMANY, n) for n in (1, 15)],
    ids=lambda value: value.country if isinstance(value, BusinessCalendar) else str(value),
)
def test_add_business_days_lands_on_a_business_day_with_exactly_n_business_days_before_it(
    calendar: BusinessCalendar, n: int
) -> None:
    for day in INVARIANT_DAYS:
        result = calendar.add_business_days(day, n)
        assert result > day, day
        assert calendar.is_business_day(result), day
        assert calendar.business_days_between(day, result) == n, day
        # and it is the first such day: one day earlier only n - 1 had passed
        assert calendar.business_days_between(day, result - ONE_DAY) == n - 1, day


@pytest.mark.parametrize(
    ("calendar", "business_days"),
    [(FRANCE, FRENCH_BUSINESS_DAYS), (GERMANY, GERMAN_BUSINESS_DAYS)],
    ids=["FR", "DE"],
)
@pytest.mark.parametrize("n", [1, 2, 5, 6, 10, 15])
def test_add_business_days_is_the_nth_business_day_of_the_reference_calendar(
    calendar: BusinessCalendar, business_days: list[date], n: int
) -> None:
    for day in ORACLE_DAYS:
        expected = business_days[bisect_right(business_days, day) + n - 1]
        assert calendar.add_business_days(day, n) == expected, day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_adding_zero_business_days_is_the_identity_every_day(calendar: BusinessCalendar) -> None:
    for day in ORACLE_DAYS:
        assert calendar.add_business_days(day, 0) == day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_adding_one_more_business_day_is_the_next_business_day(calendar: BusinessCalendar) -> None:
    for day in INVARIANT_DAYS:
        assert calendar.add_business_days(day, 1) == calendar.next_business_day(day), day
        five = calendar.add_business_days(day, 5)
        assert calendar.add_business_days(day, 6) == calendar.next_business_day(five), day
        assert calendar.add_business_days(five, 5) == calendar.add_business_days(day, 10), day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_next_business_day_leaves_no_business_day_in_between(calendar: BusinessCalendar) -> None:
    for day in INVARIANT_DAYS:
        following = calendar.next_business_day(day)
        assert following > day, day
        assert calendar.is_business_day(following), day
        between = days_from(day + ONE_DAY, following - ONE_DAY)
        assert not any(calendar.is_business_day(d) for d in between), day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_previous_business_day_leaves_no_business_day_in_between(
    calendar: BusinessCalendar,
) -> None:
    for day in INVARIANT_DAYS:
        preceding = calendar.previous_business_day(day)
        assert preceding < day, day
        assert calendar.is_business_day(preceding), day
        between = days_from(preceding + ONE_DAY, day - ONE_DAY)
        assert not any(calendar.is_business_day(d) for d in between), day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_previous_of_next_business_day_is_the_day_itself_or_the_business_day_before(
    calendar: BusinessCalendar,
) -> None:
    for day in INVARIANT_DAYS:
        back = calendar.previous_business_day(calendar.next_business_day(day))
        if calendar.is_business_day(day):
            assert back == day
        else:
            assert back == calendar.previous_business_day(day)


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_business_days_between_is_the_running_count_of_business_days(
    calendar: BusinessCalendar,
) -> None:
    start = INVARIANT_DAYS[0]
    running = 0
    for day in INVARIANT_DAYS[1:]:
        running += calendar.is_business_day(day)
        if day.day in (1, 15) or day == INVARIANT_DAYS[-1]:
            assert calendar.business_days_between(start, day) == running, day


@pytest.mark.parametrize("calendar", [FRANCE, GERMANY], ids=["FR", "DE"])
def test_business_days_between_adds_up_over_consecutive_intervals(
    calendar: BusinessCalendar,
) -> None:
    for first in INVARIANT_DAYS[::7]:
        middle = first + timedelta(days=9)
        last = first + timedelta(days=23)
        assert calendar.business_days_between(first, last) == (
            calendar.business_days_between(first, middle)
            + calendar.business_days_between(middle, last)
        ), first
