"""The reminder plan of docs/domain.md, checked by hand on examples and by invariants over every
send date of a year and every Δ from -60 to +90 days, for France and Germany."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from relance.common.calendar import BusinessCalendar
from relance.common.events.types import StepKind
from relance.scheduler.plan import PlannedStep, ReminderRules, plan_reminders

FR = ReminderRules()
DE = ReminderRules(country="DE", timezone="Europe/Berlin", reminder_time=time(8, 30))
K = StepKind


def paris(day: date, hour: int = 14) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo("Europe/Paris"))


def kinds_and_dates(steps: list[PlannedStep]) -> list[tuple[str, str]]:
    return [(s.kind.value, s.on.isoformat()) for s in steps]


# Hand-checked examples (French calendar 2026: Easter Monday 6 Apr, 1 and 8 May, Ascension
# 14 May, Whit Monday 25 May, 14 July, 15 Aug, 1 and 11 Nov, Christmas).


def test_early_invoice_gets_midpoint_due_and_three_escalations_after_easter_monday():
    steps = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 31), FR)
    assert kinds_and_dates(steps) == [
        ("issuance", "2026-03-02"),
        ("pre_due", "2026-03-16"),  # S + 14 days, a Monday
        ("due", "2026-03-31"),
        ("escalation_1", "2026-04-08"),  # 1, 2, 3, (Easter Monday 6), 7, 8 April
        ("escalation_2", "2026-04-15"),
        ("escalation_3", "2026-04-22"),
    ]


def test_germany_counts_good_friday_as_a_holiday():
    steps = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 31), DE)
    assert [s.on.isoformat() for s in steps if s.kind is K.ESCALATION_1] == ["2026-04-09"]


def test_sent_three_days_before_due_is_case_b_with_no_pre_due_and_no_due_step():
    steps = plan_reminders(paris(date(2026, 6, 1)), date(2026, 6, 4), FR)
    assert kinds_and_dates(steps) == [
        ("issuance", "2026-06-01"),
        ("escalation_1", "2026-06-08"),  # S + 5 bd
        ("escalation_2", "2026-06-15"),
        ("escalation_3", "2026-06-22"),
    ]


def test_sent_four_days_before_due_is_case_a():
    steps = plan_reminders(paris(date(2026, 6, 1)), date(2026, 6, 5), FR)
    assert [s.kind for s in steps] == [
        K.ISSUANCE,
        K.PRE_DUE,
        K.DUE,
        K.ESCALATION_1,
        K.ESCALATION_2,
        K.ESCALATION_3,
    ]
    assert steps[1].on == date(2026, 6, 3)  # S + 2 days, a Wednesday


def test_sent_on_the_due_date_gets_overdue_six_business_days_later():
    steps = plan_reminders(paris(date(2026, 7, 10)), date(2026, 7, 10), FR)
    assert kinds_and_dates(steps) == [
        ("issuance", "2026-07-10"),
        ("overdue", "2026-07-21"),  # 13, (14 July), 15, 16, 17, 20, 21
        ("escalation_1", "2026-07-28"),
        ("escalation_2", "2026-08-04"),
        ("escalation_3", "2026-08-11"),
    ]


def test_due_on_a_sunday_is_reminded_the_friday_before():
    steps = plan_reminders(paris(date(2026, 9, 1)), date(2026, 9, 20), FR)
    due = next(s for s in steps if s.kind is K.DUE)
    assert due.on == date(2026, 9, 18)
    escalation_1 = next(s for s in steps if s.kind is K.ESCALATION_1)
    assert escalation_1.on == date(2026, 9, 25), "escalations count from D, not from the due step"


def test_due_after_a_long_holiday_stretch_with_no_business_day_is_sent_on_d():
    # Thursday 24 Dec 2026, due Monday 28 Dec in Germany: 25 and 26 Dec are holidays there,
    # 27 is a Sunday, so (S, D] holds one business day: the 28th itself.
    steps = plan_reminders(paris(date(2026, 12, 24)), date(2026, 12, 28), DE)
    due = next(s for s in steps if s.kind is K.DUE)
    assert due.on == date(2026, 12, 28)


def test_due_date_on_a_holiday_with_no_business_day_before_it_is_sent_that_day():
    # Friday 1 May 2026 is a holiday; sent Monday 27 April: due step on Thursday 30 April.
    steps = plan_reminders(paris(date(2026, 4, 27)), date(2026, 5, 1), FR)
    assert next(s for s in steps if s.kind is K.DUE).on == date(2026, 4, 30)


def test_pre_due_rolls_forward_from_a_weekend_midpoint():
    # S Thursday 1 Oct 2026, D Tuesday 13 Oct: Δ = 12, m = 7 Oct (Wednesday).
    steps = plan_reminders(paris(date(2026, 10, 1)), date(2026, 10, 13), FR)
    assert next(s for s in steps if s.kind is K.PRE_DUE).on == date(2026, 10, 7)
    # S Monday 5 Oct, D Tuesday 15 Oct... m = 10 Oct, a Saturday: rolls to Monday 12 Oct.
    steps = plan_reminders(paris(date(2026, 10, 5)), date(2026, 10, 15), FR)
    assert next(s for s in steps if s.kind is K.PRE_DUE).on == date(2026, 10, 12)


def test_pre_due_rolls_back_when_rolling_forward_meets_the_due_step():
    # S Wednesday 6 May 2026, D Monday 11 May (Δ = 5): m = 8 May, a holiday (Victoire 1945);
    # forward gives 11 May = the due step, so it rolls back to Thursday 7 May.
    steps = plan_reminders(paris(date(2026, 5, 6)), date(2026, 5, 11), FR)
    assert next(s for s in steps if s.kind is K.PRE_DUE).on == date(2026, 5, 7)


def test_no_pre_due_when_no_business_day_fits_between_send_and_due():
    # S Thursday 30 Apr 2026, D Monday 4 May (Δ = 4): m = Saturday 2 May; forward gives
    # Monday 4 May, the due step itself; back gives Thursday 30 April, the send date.
    steps = plan_reminders(paris(date(2026, 4, 30)), date(2026, 5, 4), FR)
    assert [s.kind for s in steps][:3] == [K.ISSUANCE, K.DUE, K.ESCALATION_1]


def test_reminders_go_out_at_the_organization_time_of_day_in_its_zone():
    steps = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 31), FR)
    assert steps[1].at == datetime(2026, 3, 16, 8, 0, tzinfo=UTC)  # 09:00 Paris in winter
    assert steps[2].at == datetime(2026, 3, 31, 7, 0, tzinfo=UTC)  # 09:00 Paris in summer
    berlin = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 31), DE)
    assert berlin[1].at.astimezone(UTC) == datetime(2026, 3, 16, 7, 30, tzinfo=UTC)


def test_issuance_goes_out_at_the_send_instant_on_the_local_send_date():
    sent = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January in Paris
    steps = plan_reminders(sent, date(2027, 1, 31), FR)
    assert steps[0].kind is K.ISSUANCE
    assert steps[0].at == sent
    assert steps[0].on == date(2027, 1, 1)
    assert steps[0].severity == 0


def test_severities_rise_with_the_steps():
    steps = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 31), FR)
    assert [s.severity for s in steps] == [0, 1, 2, 3, 4, 5]
    overdue = plan_reminders(paris(date(2026, 3, 2)), date(2026, 3, 1), FR)
    assert [s.severity for s in overdue] == [0, 2, 3, 4, 5]


def test_a_naive_send_instant_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_reminders(datetime(2026, 3, 2, 9, 0), date(2026, 3, 31), FR)


# Invariants over a whole year of send dates and every Δ from -60 to +90.

YEAR_2026 = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


@pytest.mark.parametrize("rules", [FR, DE], ids=["FR", "DE"])
@pytest.mark.parametrize("month", range(1, 13))
def test_invariants_hold_for_every_send_date_and_every_delta(rules: ReminderRules, month: int):
    calendar = BusinessCalendar(rules.country)
    zone = ZoneInfo(rules.timezone)
    checked = 0
    for sent_on in (d for d in YEAR_2026 if d.month == month):
        sent_at = datetime.combine(sent_on, time(15, 45), tzinfo=zone)
        for delta in range(-60, 91):
            due = sent_on + timedelta(days=delta)
            steps = plan_reminders(sent_at, due, rules)
            check_invariants(steps, sent_on, due, delta, calendar, rules)
            checked += 1
    assert checked == 151 * sum(1 for d in YEAR_2026 if d.month == month)


def check_invariants(
    steps: list[PlannedStep],
    sent_on: date,
    due: date,
    delta: int,
    calendar: BusinessCalendar,
    rules: ReminderRules,
) -> None:
    context = f"S={sent_on} D={due} Δ={delta}"
    kinds = [s.kind for s in steps]
    assert kinds[0] is K.ISSUANCE, context
    assert steps[0].on == sent_on, context
    later = steps[1:]

    # order: strictly increasing dates, all after S
    days = [s.on for s in steps]
    assert days == sorted(days), context
    assert len(set(days)) == len(days), context
    assert all(s.on > sent_on for s in later), context

    # kinds and counts per case
    if delta >= 4:
        assert kinds[-3:] == [K.ESCALATION_1, K.ESCALATION_2, K.ESCALATION_3], context
        assert kinds[1:-3] in ([K.PRE_DUE, K.DUE], [K.DUE]), context
        due_step = next(s for s in later if s.kind is K.DUE)
        assert due_step.on <= due, context
        assert calendar.business_days_between(due_step.on, due) == 0 or due_step.on == due, context
        assert steps[-3].on == calendar.add_business_days(due, 5), context
        if K.PRE_DUE in kinds:
            pre_due = steps[1]
            assert sent_on < pre_due.on < due_step.on, context
            assert calendar.is_business_day(pre_due.on), context
    elif delta >= 1:
        assert kinds == [K.ISSUANCE, K.ESCALATION_1, K.ESCALATION_2, K.ESCALATION_3], context
        assert steps[1].on == calendar.add_business_days(sent_on, 5), context
    else:
        assert kinds == [K.ISSUANCE, K.OVERDUE, *ESC], context
        assert steps[1].on == calendar.add_business_days(sent_on, 6), context

    # business days: every reminder but a `due` with no business day in (S, D]
    for step in later:
        if step.kind is K.DUE and not calendar.is_business_day(step.on):
            assert step.on == due, context
            assert calendar.business_days_between(sent_on, due) == 0 or calendar.is_business_day(
                due
            )
        else:
            assert calendar.is_business_day(step.on), f"{context} {step.kind} on {step.on}"

    # escalations 5 business days apart
    escalations = [s.on for s in later if s.kind in ESC]
    assert calendar.add_business_days(escalations[0], 5) == escalations[1], context
    assert calendar.add_business_days(escalations[1], 5) == escalations[2], context

    # time of day and severities
    for step in later:
        local = step.at.astimezone(ZoneInfo(rules.timezone))
        assert (local.date(), local.time()) == (step.on, rules.reminder_time), context
    assert [s.severity for s in steps] == sorted(s.severity for s in steps), context


ESC = [K.ESCALATION_1, K.ESCALATION_2, K.ESCALATION_3]
