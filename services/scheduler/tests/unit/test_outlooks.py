"""When each step goes given the plan's holds: the rule behind the plan a person sees."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from relance.common.events.types import HoldReason, StepStatus
from relance.scheduler.plan import (
    ReminderRules,
    StepOutlook,
    StepState,
    plan_reminders,
    schedule_hold_ends,
    step_outlooks,
)

PARIS = ZoneInfo("Europe/Paris")
SENT = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
START = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
P = StepStatus.PLANNED
HELD_BY_DATE = HoldReason.PAYMENT_SCHEDULED


def plan_of_march_invoice() -> list[StepState]:
    """Sent Monday 2 March 2026, due Tuesday 31 March: issuance sent, the rest waiting."""
    steps = plan_reminders(SENT, date(2026, 3, 31), ReminderRules())
    return [StepState(steps[0].at, StepStatus.SENT)] + [StepState(s.at, P) for s in steps[1:]]


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day} 09:00").replace(tzinfo=PARIS)


def test_without_a_hold_every_waiting_step_goes_at_its_own_time():
    steps = plan_of_march_invoice()
    outlooks = step_outlooks(steps, hold_until=None, awaiting_decision=False, now=SENT)
    assert [o.goes_at for o in outlooks[1:]] == [s.scheduled_for for s in steps[1:]]
    assert not any(o.held for o in outlooks)
    assert outlooks[0] == StepOutlook(fire_at=None, goes_at=None, hold_reason=None)


def test_a_payment_announced_for_friday_27_march_moves_the_due_reminder_to_1_april():
    steps = plan_of_march_invoice()
    hold = schedule_hold_ends(date(2026, 3, 27), ReminderRules())  # Wednesday 1 April, 09:00
    _, pre_due, due, escalation_1, *_ = step_outlooks(
        steps, hold_until=hold, awaiting_decision=False, now=at("2026-03-03")
    )
    # pre_due (16 March) and due (31 March) both fall in the hold: only the later one goes
    assert pre_due == StepOutlook(fire_at=hold, goes_at=None, hold_reason=HELD_BY_DATE)
    assert due == StepOutlook(fire_at=hold, goes_at=at("2026-04-01"), hold_reason=HELD_BY_DATE)
    # escalation_1 (8 April, after Easter Monday) was after the hold: it keeps its date
    assert escalation_1 == StepOutlook(
        fire_at=at("2026-04-08"), goes_at=at("2026-04-08"), hold_reason=None
    )


def test_a_detected_payment_holds_every_waiting_step_with_no_date_until_a_person_decides():
    steps = plan_of_march_invoice()
    steps[1] = StepState(steps[1].scheduled_for, P, fired_at=at("2026-03-16"))
    outlooks = step_outlooks(
        steps, hold_until=at("2026-04-01"), awaiting_decision=True, now=at("2026-03-20")
    )
    assert outlooks[1] == StepOutlook(fire_at=None, goes_at=at("2026-03-16"), hold_reason=None)
    assert all(
        o == StepOutlook(fire_at=None, goes_at=None, hold_reason=HoldReason.PAYMENT_DETECTED)
        for o in outlooks[2:]
    )


def test_once_a_person_rejects_the_payment_only_the_latest_past_step_goes_at_once():
    steps = plan_of_march_invoice()
    rejected_at = datetime(2026, 4, 8, 11, 30, tzinfo=PARIS)  # escalation_1 was due at 09:00
    outlooks = step_outlooks(steps, hold_until=None, awaiting_decision=False, now=rejected_at)
    assert [o.goes_at for o in outlooks[1:4]] == [None, None, rejected_at]
    assert outlooks[4].goes_at == steps[4].scheduled_for  # escalation_2 keeps its date
    assert not any(o.held for o in outlooks)


def test_a_hold_already_over_holds_no_more():
    steps = plan_of_march_invoice()
    after = at("2026-04-02")
    outlooks = step_outlooks(steps, hold_until=at("2026-04-01"), awaiting_decision=False, now=after)
    assert not any(o.held for o in outlooks)
    assert [o.goes_at for o in outlooks[1:3]] == [None, after]


def test_a_waiting_step_before_one_already_sent_will_be_skipped():
    steps = [StepState(at("2026-03-16"), P), StepState(at("2026-03-10"), StepStatus.SENT)]
    (first, _) = step_outlooks(steps, hold_until=None, awaiting_decision=False, now=SENT)
    assert first.goes_at is None
    assert not first.held


# Random plans: steps in plan order (times never decreasing), any statuses, any holds.

STATUSES = st.sampled_from(
    [(P, False), (P, True), (StepStatus.SENT, True), (StepStatus.FAILED, True)]
    + [(s, False) for s in StepStatus]
)


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[StepState], datetime | None, bool, datetime]:
    gaps = draw(st.lists(st.integers(0, 20), min_size=1, max_size=8))
    steps = []
    day = START
    for gap in gaps:
        day += timedelta(days=gap)
        status, fired = draw(STATUSES)
        steps.append(StepState(day, status, day if fired else None))
    hold = draw(st.none() | st.integers(-5, 120).map(lambda d: START + timedelta(days=d)))
    now = START + timedelta(hours=draw(st.integers(-48, 24 * 120)))
    return steps, hold, draw(st.booleans()), now


def fire_like_the_loop(
    steps: list[StepState], fire_at: list[datetime | None], now: datetime
) -> dict[int, datetime]:
    """The firing loop step by step from ``now`` on, run on time: at each instant a step is
    due, take every due step; one with a later step due too or already gone is skipped, the
    others go."""
    gone = [step.gone for step in steps]
    pending = dict(enumerate(fire_at))
    went: dict[int, datetime] = {}
    for instant in sorted({max(t, now) for t in fire_at if t is not None}):
        due = [i for i, t in pending.items() if t is not None and t <= instant]
        for i in due:
            if not any(gone[j] or j in due for j in range(i + 1, len(steps))):
                went[i] = instant
        for i in due:
            pending[i] = None
            gone[i] = gone[i] or i in went
    return went


@given(plans())
def test_goes_at_is_when_the_firing_loop_sends_the_step(plan):
    steps, hold, awaiting, now = plan
    outlooks = step_outlooks(steps, hold_until=hold, awaiting_decision=awaiting, now=now)
    went = fire_like_the_loop(steps, [o.fire_at for o in outlooks], now)
    waiting = [i for i, step in enumerate(steps) if step.waiting]
    assert {i: outlooks[i].goes_at for i in waiting if outlooks[i].goes_at} == went


@given(plans())
def test_no_waiting_step_goes_before_its_time_nor_during_a_hold(plan):
    steps, hold, awaiting, now = plan
    outlooks = step_outlooks(steps, hold_until=hold, awaiting_decision=awaiting, now=now)
    for step, outlook in zip(steps, outlooks, strict=True):
        if not step.waiting:
            assert outlook.fire_at is None
            assert not outlook.held
            assert outlook.goes_at == step.fired_at
            continue
        if awaiting:
            assert outlook.hold_reason is HoldReason.PAYMENT_DETECTED
            assert outlook.goes_at is None
        elif outlook.goes_at is not None:
            assert outlook.goes_at >= max(step.scheduled_for, now)
            assert hold is None or outlook.goes_at >= hold
            # held exactly when a hold not yet over moved it
            assert outlook.held == (outlook.goes_at == hold and hold > max(step.scheduled_for, now))


@given(plans())
def test_of_the_steps_a_payment_hold_gathers_only_the_latest_goes(plan):
    steps, hold, _, now = plan
    outlooks = step_outlooks(steps, hold_until=hold, awaiting_decision=False, now=now)
    going = [o.goes_at for s, o in zip(steps, outlooks, strict=True) if s.waiting and o.goes_at]
    assert len(going) == len(set(going))  # never two reminders at the same instant
    held = [i for i, o in enumerate(outlooks) if o.hold_reason is HELD_BY_DATE]
    assert [i for i in held if outlooks[i].goes_at is not None] in ([], held[-1:])
