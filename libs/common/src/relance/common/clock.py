"""The one source of "now" for every service, so that tests can move time.

Code never calls ``datetime.now()``: it asks the clock it was given. Production gets a
:class:`SystemClock`; tests get a :class:`FrozenClock` they can set and advance.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self._now = _aware(at)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = _aware(at)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def local_today(clock: Clock, timezone: str) -> date:
    """Today's date for a person living in ``timezone`` (an IANA name)."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()


def seconds_until(
    at: datetime | None, now: datetime, *, at_most: float, at_least: float = 0.0
) -> float:
    """How long a loop sleeps before the work due ``at`` (none known: ``at_most``), kept
    between ``at_least`` and ``at_most`` so that it also looks again now and then."""
    if at is None:
        return at_most
    return min(max((at - now).total_seconds(), at_least), at_most)


def start_of_local_day(day: date, timezone: str) -> datetime:
    """The first instant (UTC) at which ``local_today`` is ``day`` in ``timezone``: local
    midnight, or, where the clocks skip midnight, the moment they jump past it."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a clock only holds timezone-aware instants")
    return at.astimezone(UTC)
