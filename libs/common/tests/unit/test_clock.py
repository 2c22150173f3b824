"""The clocks every service reads "now" from, and today's date in a given time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from relance.common.clock import Clock, FrozenClock, SystemClock, local_today, seconds_until

PARIS = ZoneInfo("Europe/Paris")


def test_system_clock_gives_the_current_instant_in_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert before <= now <= after
    assert now.utcoffset() == timedelta(0)


def test_system_clock_moves_forward() -> None:
    clock = SystemClock()
    first = clock.now()
    assert clock.now() >= first


def test_frozen_clock_gives_the_instant_it_was_set_to_again_and_again() -> None:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    clock = FrozenClock(at)
    assert clock.now() == at
    assert clock.now() == at


def test_frozen_clock_holds_instants_in_utc() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, 1, 0, tzinfo=PARIS))
    assert clock.now() == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_frozen_clock_accepts_any_fixed_offset() -> None:
    clock = FrozenClock(datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == datetime(2026, 6, 1, 17, 0, tzinfo=UTC)


def test_frozen_clock_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(datetime(2026, 1, 1, 9, 0))


def test_setting_a_frozen_clock_moves_it_to_the_new_instant() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.set(datetime(2026, 5, 4, 8, 30, tzinfo=UTC))
    assert clock.now() == datetime(2026, 5, 4, 8, 30, tzinfo=UTC)


def test_setting_a_frozen_clock_can_move_it_back() -> None:
    clock = FrozenClock(datetime(2026, 5, 4, tzinfo=UTC))
    clock.set(datetime(2025, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)


def test_setting_a_frozen_clock_converts_to_utc() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.set(datetime(2026, 7, 1, 9, 0, tzinfo=PARIS))
    assert clock.now() == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_setting_a_frozen_clock_to_a_naive_datetime_is_refused_and_keeps_the_time() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FrozenClock(at)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 2, 1))
    assert clock.now() == at


def test_advancing_a_frozen_clock_adds_the_delta() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    clock.advance(timedelta(hours=2, minutes=30))
    assert clock.now() == datetime(2026, 1, 1, 11, 30, tzinfo=UTC)


def test_advances_of_a_frozen_clock_accumulate() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    for _ in range(48):
        clock.advance(timedelta(minutes=30))
    assert clock.now() == datetime(2026, 1, 2, tzinfo=UTC)


def test_advancing_a_frozen_clock_by_a_negative_delta_moves_it_back() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(days=-1))
    assert clock.now() == datetime(2025, 12, 31, tzinfo=UTC)


def test_advancing_over_a_dst_change_adds_elapsed_time_not_wall_clock_time() -> None:
    # Paris goes from 02:00 CET to 03:00 CEST on 29 March 2026 (01:00 UTC)
    clock = FrozenClock(datetime(2026, 3, 29, 1, 30, tzinfo=PARIS))
    clock.advance(timedelta(hours=1))
    assert clock.now() == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert clock.now().astimezone(PARIS).hour == 3


def test_advancing_a_frozen_clock_keeps_it_in_utc() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(days=200))
    assert clock.now().utcoffset() == timedelta(0)


def test_both_clocks_are_usable_where_a_clock_is_expected() -> None:
    def year_of(clock: Clock) -> int:
        return clock.now().year

    assert year_of(FrozenClock(datetime(2031, 6, 1, tzinfo=UTC))) == 2031
    assert year_of(SystemClock()) >= 2024


@pytest.mark.parametrize(
    ("at", "zone", "expected"),
    [
        # 23:30 UTC on 31 December is already New Year's Day in Paris (UTC+1)
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "Europe/Paris", date(2026, 1, 1)),
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "UTC", date(2025, 12, 31)),
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "America/New_York", date(2025, 12, 31)),
        (datetime(2025, 12, 31, 22, 59, tzinfo=UTC), "Europe/Paris", date(2025, 12, 31)),
        (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), "Europe/Paris", date(2026, 1, 1)),
        # 05:00 UTC on 1 January is still New Year's Eve on the US west coast
        (datetime(2026, 1, 1, 5, 0, tzinfo=UTC), "America/Los_Angeles", date(2025, 12, 31)),
        (datetime(2026, 1, 1, 5, 0, tzinfo=UTC), "Europe/Paris", date(2026, 1, 1)),
        # Tokyo (UTC+9) and Auckland (UTC+13 in its summer) are a day ahead in the afternoon
        (datetime(2026, 3, 10, 15, 0, tzinfo=UTC), "Asia/Tokyo", date(2026, 3, 11)),
        (datetime(2026, 1, 10, 11, 0, tzinfo=UTC), "Pacific/Auckland", date(2026, 1, 11)),
        (datetime(2026, 1, 10, 10, 59, tzinfo=UTC), "Pacific/Auckland", date(2026, 1, 10)),
        # summer time in Paris is UTC+2: 22:30 UTC is already the next day
        (datetime(2026, 6, 30, 22, 30, tzinfo=UTC), "Europe/Paris", date(2026, 7, 1)),
        (datetime(2026, 6, 30, 21, 30, tzinfo=UTC), "Europe/Paris", date(2026, 6, 30)),
        # ...but not in winter (UTC+1)
        (datetime(2026, 12, 30, 22, 30, tzinfo=UTC), "Europe/Paris", date(2026, 12, 30)),
        # Réunion (UTC+4) and Martinique (UTC-4)
        (datetime(2026, 5, 31, 20, 0, tzinfo=UTC), "Indian/Reunion", date(2026, 6, 1)),
        (datetime(2026, 6, 1, 3, 0, tzinfo=UTC), "America/Martinique", date(2026, 5, 31)),
    ],
)
def test_local_today_is_the_date_on_the_wall_in_the_time_zone(
    at: datetime, zone: str, expected: date
) -> None:
    assert local_today(FrozenClock(at), zone) == expected


def test_local_today_does_not_depend_on_the_zone_the_clock_was_set_in() -> None:
    in_paris = FrozenClock(datetime(2026, 1, 1, 0, 30, tzinfo=PARIS))
    in_utc = FrozenClock(datetime(2025, 12, 31, 23, 30, tzinfo=UTC))
    assert local_today(in_paris, "UTC") == local_today(in_utc, "UTC") == date(2025, 12, 31)
    assert local_today(in_paris, "Europe/Paris") == date(2026, 1, 1)


def test_local_today_follows_a_frozen_clock_that_advances_past_midnight() -> None:
    clock = FrozenClock(datetime(2025, 12, 31, 22, 0, tzinfo=UTC))
    assert local_today(clock, "Europe/Paris") == date(2025, 12, 31)
    clock.advance(timedelta(hours=1))
    assert local_today(clock, "Europe/Paris") == date(2026, 1, 1)
    assert local_today(clock, "UTC") == date(2025, 12, 31)


def test_local_today_with_the_system_clock_is_today_in_that_zone() -> None:
    before = datetime.now(PARIS).date()
    today = local_today(SystemClock(), "Europe/Paris")
    after = datetime.now(PARIS).date()
    assert before <= today <= after


def test_local_today_refuses_an_unknown_time_zone() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ZoneInfoNotFoundError):
        local_today(clock, "Europe/Atlantis")


def test_a_loop_with_nothing_due_sleeps_its_longest():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert seconds_until(None, now, at_most=5.0) == 5.0


def test_a_loop_sleeps_until_the_next_due_work_but_never_past_its_longest():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert seconds_until(now + timedelta(seconds=2), now, at_most=5.0) == 2.0
    assert seconds_until(now + timedelta(hours=1), now, at_most=5.0) == 5.0


def test_work_already_due_is_taken_at_once_or_after_the_floor():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert seconds_until(now - timedelta(seconds=3), now, at_most=5.0) == 0.0
    assert seconds_until(now - timedelta(seconds=3), now, at_most=5.0, at_least=0.2) == 0.2
