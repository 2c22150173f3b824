"""When the calendar alone changes an invoice's status: the day ``next_calendar_change``
names must agree with ``invoice_status`` for every invoice and every day, and the instant
it starts must be the organization's midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.common.clock import FrozenClock, local_today, start_of_local_day
from relance.invoice_api.status import (
    InvoiceStatus,
    StatusFacts,
    invoice_status,
    next_calendar_change,
)

S = InvoiceStatus
SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# zones with and without summer time, east and west of UTC, some moving at midnight
ZONES = (
    "Europe/Paris",
    "UTC",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
)

days = st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))


@st.composite
def invoice_facts(draw: st.DrawFn) -> StatusFacts:
    total = draw(st.decimals(min_value=1, max_value=1000, places=2))
    return StatusFacts(
        sent_at=draw(st.sampled_from([None, SENT, SENT, SENT])),
        total=total,
        paid=draw(st.sampled_from([Decimal(0), Decimal(0), total, total / 2])),
        due_date=draw(days),
        in_collection=draw(st.sampled_from([False, False, False, True])),
        scheduled_until=draw(st.none() | days),
    )


@settings(max_examples=600)
@given(invoice_facts(), days)
def test_the_status_stays_the_same_until_the_named_day_and_differs_on_it(facts, today):
    change = next_calendar_change(facts, today)
    status = invoice_status(facts, today)
    horizon = change if change is not None else today + timedelta(days=3 * 366 + 400)
    day = today
    while day < horizon:
        assert invoice_status(facts, day) is status
        day += DAY
    if change is not None:
        assert change > today
        assert invoice_status(facts, change) is not status


@settings(max_examples=300)
@given(invoice_facts(), days)
def test_draft_paid_and_collected_invoices_never_change_by_the_calendar(facts, today):
    if invoice_status(facts, today) in (S.DRAFT, S.PAID, S.IN_COLLECTION):
        assert next_calendar_change(facts, today) is None


def test_not_due_becomes_to_collect_the_day_after_the_due_date():
    facts = StatusFacts(SENT, Decimal(100), Decimal(0), due_date=date(2026, 3, 31))
    assert next_calendar_change(facts, date(2026, 3, 2)) == date(2026, 4, 1)
    assert next_calendar_change(facts, date(2026, 3, 31)) == date(2026, 4, 1)
    assert next_calendar_change(facts, date(2026, 4, 1)) is None


def test_a_schedule_that_ends_after_the_due_date_gives_way_to_to_collect_or_partially_paid():
    unpaid = StatusFacts(SENT, Decimal(100), Decimal(0), date(2026, 3, 31), False, date(2026, 4, 6))
    assert next_calendar_change(unpaid, date(2026, 4, 1)) == date(2026, 4, 7)
    assert invoice_status(unpaid, date(2026, 4, 7)) is S.TO_COLLECT
    partly = StatusFacts(SENT, Decimal(100), Decimal(1), date(2026, 3, 31), False, date(2026, 4, 6))
    assert next_calendar_change(partly, date(2026, 4, 1)) == date(2026, 4, 7)
    assert invoice_status(partly, date(2026, 4, 7)) is S.PARTIALLY_PAID


def test_a_schedule_that_ends_before_the_due_date_changes_twice():
    facts = StatusFacts(SENT, Decimal(100), Decimal(0), date(2026, 4, 30), False, date(2026, 4, 6))
    assert next_calendar_change(facts, date(2026, 4, 1)) == date(2026, 4, 7)
    assert invoice_status(facts, date(2026, 4, 7)) is S.NOT_DUE
    assert next_calendar_change(facts, date(2026, 4, 7)) == date(2026, 5, 1)


@settings(max_examples=600)
@given(days, st.sampled_from(ZONES))
def test_a_day_starts_at_the_first_instant_the_organization_s_today_is_that_day(day, zone):
    start = start_of_local_day(day, zone)
    assert start.tzinfo is not None
    assert local_today(FrozenClock(start), zone) == day
    assert local_today(FrozenClock(start - timedelta(microseconds=1)), zone) < day


def test_paris_midnight_is_22_or_23_utc_the_evening_before():
    assert start_of_local_day(date(2026, 4, 1), "Europe/Paris") == datetime(
        2026, 3, 31, 22, 0, tzinfo=UTC
    )
    assert start_of_local_day(date(2026, 1, 1), "Europe/Paris") == datetime(
        2025, 12, 31, 23, 0, tzinfo=UTC
    )
