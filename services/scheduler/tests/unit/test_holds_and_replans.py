"""When a scheduled payment stops holding reminders, and what a new due date replans."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from relance.common.calendar import BusinessCalendar
from relance.common.events.types import StepKind
from relance.scheduler.plan import (
    ReminderRules,
    plan_reminders,
    schedule_hold_ends,
    steps_after_due_date_change,
)

FR = ReminderRules()
K = StepKind


def test_a_payment_announced_for_a_friday_holds_through_the_tuesday():
    # P = Friday 27 March 2026; P + 2 bd = Tuesday 31; the hold ends Wednesday 1 April
    ends = schedule_hold_ends(date(2026, 3, 27), FR)
    assert ends == datetime(2026, 4, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


def test_the_hold_skips_holidays_like_the_invoice_status_does():
    # P = Friday 3 April 2026: Easter Monday 6, so P + 2 bd = Wednesday 8; ends Thursday 9
    assert schedule_hold_ends(date(2026, 4, 3), FR).date() == date(2026, 4, 9)


def test_the_hold_ends_at_the_organization_time_in_its_zone():
    rules = ReminderRules(country="US", timezone="America/New_York", reminder_time=time(7, 45))
    ends = schedule_hold_ends(date(2026, 7, 1), rules)  # Wed; 3 July observed, 4 July Sat
    assert ends.astimezone(UTC) == datetime(2026, 7, 7, 11, 45, tzinfo=UTC)


@pytest.mark.parametrize("offset", range(0, 400, 3))
def test_a_hold_always_ends_on_the_business_day_after_p_plus_two(offset: int):
    planned_on = date(2026, 1, 1) + timedelta(days=offset)
    calendar = BusinessCalendar("FR")
    ends = schedule_hold_ends(planned_on, FR).date()
    last_held = calendar.add_business_days(planned_on, 2)
    assert ends > last_held
    assert calendar.is_business_day(ends)
    assert calendar.next_business_day(last_held) == ends


def test_a_later_due_date_keeps_sent_kinds_and_never_reissues():
    sent_at = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    new_plan = plan_reminders(sent_at, date(2026, 4, 30), FR)
    added = steps_after_due_date_change(new_plan, {K.ISSUANCE, K.PRE_DUE})
    assert [s.kind for s in added] == [K.DUE, K.ESCALATION_1, K.ESCALATION_2, K.ESCALATION_3]
    assert added[0].on == date(2026, 4, 30)


def test_a_due_date_moved_before_the_send_date_turns_the_plan_into_case_c():
    sent_at = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    new_plan = plan_reminders(sent_at, date(2026, 2, 27), FR)
    added = steps_after_due_date_change(new_plan, {K.ISSUANCE})
    assert [s.kind for s in added] == [K.OVERDUE, K.ESCALATION_1, K.ESCALATION_2, K.ESCALATION_3]


def test_nothing_is_added_when_every_kind_already_went():
    sent_at = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    new_plan = plan_reminders(sent_at, date(2026, 3, 31), FR)
    assert steps_after_due_date_change(new_plan, {s.kind for s in new_plan}) == []
