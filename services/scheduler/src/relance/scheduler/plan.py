"""The reminder plan: from the send instant and the due date to the list of steps.

Pure rules, no I/O and no clock. Δ = D - S in calendar days, S being the local send date:

- case A, Δ ≥ 4: ``pre_due`` near the midpoint, ``due`` on the due date, then three
  escalations 5, 10 and 15 business days after D;
- case B, 1 ≤ Δ ≤ 3 (Δ = 3 included, where the product pages leave a gap): three
  escalations 5, 10 and 15 business days after S;
- case C, Δ ≤ 0: ``overdue`` 6 business days after S, then three escalations 5, 10 and 15
  business days after that.

``issuance`` goes out at the send instant; every other step at the organization's
reminder time, in its time zone, on a business day of its country (the one exception:
``due`` when no business day lies between S, excluded, and D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from relance.common.calendar import BusinessCalendar
from relance.common.events.types import HoldReason, StepKind, StepStatus

SEVERITY: dict[StepKind, int] = {
    StepKind.ISSUANCE: 0,
    StepKind.PRE_DUE: 1,
    StepKind.DUE: 2,
    StepKind.OVERDUE: 2,
    StepKind.ESCALATION_1: 3,
    StepKind.ESCALATION_2: 4,
    StepKind.ESCALATION_3: 5,
}
ESCALATIONS = (StepKind.ESCALATION_1, StepKind.ESCALATION_2, StepKind.ESCALATION_3)
ESCALATION_GAP_BD = 5
OVERDUE_AFTER_BD = 6
EARLY_SEND_MIN_DAYS = 4  # Δ from which an invoice counts as sent early (case A)
SCHEDULED_PAYMENT_GRACE_BD = 2  # a scheduled payment holds until P + 2 business days


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """What of the organization shapes its plans."""

    country: str = "FR"
    timezone: str = "Europe/Paris"
    reminder_time: time = time(9, 0)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class PlannedStep:
    kind: StepKind
    on: date  # the local date the step goes out
    at: datetime  # the instant it goes out (timezone-aware)

    @property
    def severity(self) -> int:
        return SEVERITY[self.kind]


def plan_reminders(sent_at: datetime, due_date: date, rules: ReminderRules) -> list[PlannedStep]:
    """Every step of an invoice sent at ``sent_at`` and due on ``due_date``, in order."""
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must be timezone-aware")
    zone = ZoneInfo(rules.timezone)
    calendar = BusinessCalendar(rules.country)
    sent_on = sent_at.astimezone(zone).date()
    dates = reminder_dates(sent_on, due_date, calendar)

    def at(day: date) -> datetime:
        return datetime.combine(day, rules.reminder_time, tzinfo=zone)

    return [PlannedStep(StepKind.ISSUANCE, sent_on, sent_at)] + [
        PlannedStep(kind, day, at(day)) for kind, day in dates
    ]


def reminder_dates(
    sent_on: date, due_date: date, calendar: BusinessCalendar
) -> list[tuple[StepKind, date]]:
    """The steps after ``issuance`` and their local dates."""
    delta = (due_date - sent_on).days
    if delta >= EARLY_SEND_MIN_DAYS:
        due_on = due_step_date(sent_on, due_date, calendar)
        pre_due_on = pre_due_date(sent_on, delta, due_on, calendar)
        early = [(StepKind.PRE_DUE, pre_due_on)] if pre_due_on else []
        return [*early, (StepKind.DUE, due_on), *escalations_after(due_date, calendar)]
    if delta >= 1:
        return escalations_after(sent_on, calendar)
    overdue_on = calendar.add_business_days(sent_on, OVERDUE_AFTER_BD)
    return [(StepKind.OVERDUE, overdue_on), *escalations_after(overdue_on, calendar)]


def due_step_date(sent_on: date, due_date: date, calendar: BusinessCalendar) -> date:
    """D if it is a business day, else the last business day before D; D itself when no
    business day lies in (S, D]."""
    if calendar.is_business_day(due_date):
        return due_date
    previous = calendar.previous_business_day(due_date)
    return previous if previous > sent_on else due_date


def pre_due_date(
    sent_on: date, delta: int, due_on: date, calendar: BusinessCalendar
) -> date | None:
    """The midpoint m = S + ⌊Δ/2⌋ rolled to a business day: m or the first business day
    after it, else the last one before it; the first strictly between S and the ``due``
    step. None when neither is."""
    midpoint = sent_on + timedelta(days=delta // 2)
    forward = (
        midpoint if calendar.is_business_day(midpoint) else calendar.next_business_day(midpoint)
    )
    for candidate in (forward, calendar.previous_business_day(midpoint)):
        if sent_on < candidate < due_on:
            return candidate
    return None


def escalations_after(start: date, calendar: BusinessCalendar) -> list[tuple[StepKind, date]]:
    steps = []
    day = start
    for kind in ESCALATIONS:
        day = calendar.add_business_days(day, ESCALATION_GAP_BD)
        steps.append((kind, day))
    return steps


def schedule_hold_ends(planned_on: date, rules: ReminderRules) -> datetime:
    """When a payment announced for ``planned_on`` stops holding the reminders.

    The invoice stays ``scheduled`` up to P + 2 business days; the steps it held may go
    on the next business day after that, at the reminder time.
    """
    calendar = BusinessCalendar(rules.country)
    day = calendar.add_business_days(planned_on, SCHEDULED_PAYMENT_GRACE_BD + 1)
    return datetime.combine(day, rules.reminder_time, tzinfo=ZoneInfo(rules.timezone))


@dataclass(frozen=True, slots=True)
class StepState:
    """What of a stored step decides when it goes."""

    scheduled_for: datetime
    status: StepStatus
    fired_at: datetime | None = None

    @property
    def waiting(self) -> bool:
        """Still to go: planned and not yet handed to the notifier."""
        return self.status is StepStatus.PLANNED and self.fired_at is None

    @property
    def gone(self) -> bool:
        """Handed to the notifier (fired, sent or failed): catch-up skips any waiting step
        placed before it."""
        return self.fired_at is not None or self.status in (StepStatus.SENT, StepStatus.FAILED)


@dataclass(frozen=True, slots=True)
class StepOutlook:
    """Where a step stands against the plan's holds.

    ``fire_at``: when the firing loop may take it (what ``steps.fire_at`` holds).
    ``goes_at``: when it goes if nothing changes (its own time, the end of a payment's hold,
    or at once when that time has passed), the instant it went for a step handed to the
    notifier, and None when it will not go by itself: a person must decide on a detected
    payment, catch-up will skip it, or it is done. ``hold_reason``: why it waits past its
    own time, if it does.
    """

    fire_at: datetime | None
    goes_at: datetime | None
    hold_reason: HoldReason | None

    @property
    def held(self) -> bool:
        return self.hold_reason is not None


def step_outlooks(
    steps: Sequence[StepState],
    *,
    hold_until: datetime | None,
    awaiting_decision: bool,
    now: datetime,
) -> list[StepOutlook]:
    """The outlook at ``now`` of each step of one running plan, ``steps`` in plan order.

    - A payment suggestion waits for a person (``awaiting_decision``): no waiting step goes
      until the decision, so none has a time.
    - A payment announced for a date holds the waiting steps until ``hold_until``: each may
      fire at its own time or at the hold's end, whichever is later; a time already past
      means at once.
    - Catch-up, as the firing applies it: a waiting step does not go, it is skipped, when a
      later step has gone or falls due no later than it. So of the steps a hold gathers at
      its end (or that a decision finds past) only the latest goes.
    """
    fire_at = [
        None
        if not step.waiting or awaiting_decision
        else max(step.scheduled_for, hold_until or step.scheduled_for)
        for step in steps
    ]
    # when the firing loop, on time, takes each step
    taken = [None if at is None else max(at, now) for at in fire_at]
    outlooks = []
    for position, step in enumerate(steps):
        at = taken[position]
        if step.fired_at is not None:
            goes_at = step.fired_at
        elif at is None or _overtaken(steps[position + 1 :], fire_at[position + 1 :], at):
            goes_at = None
        else:
            goes_at = at
        reason = None
        if step.waiting and awaiting_decision:
            reason = HoldReason.PAYMENT_DETECTED
        elif step.waiting and hold_until is not None and hold_until > max(step.scheduled_for, now):
            reason = HoldReason.PAYMENT_SCHEDULED  # its time falls in a hold not yet over
        outlooks.append(StepOutlook(fire_at=fire_at[position], goes_at=goes_at, hold_reason=reason))
    return outlooks


def _overtaken(
    later: Sequence[StepState], later_fire_at: Sequence[datetime | None], at: datetime
) -> bool:
    return any(
        step.gone or (fire_at is not None and fire_at <= at)
        for step, fire_at in zip(later, later_fire_at, strict=True)
    )


def steps_after_due_date_change(
    new_plan: list[PlannedStep], kept_kinds: set[StepKind]
) -> list[PlannedStep]:
    """The steps of the plan for a new due date that replace those still waiting.

    Steps that already went out (or were skipped, or failed) stay as they are; a kind that
    already went out is not sent again, and ``issuance`` never is.
    """
    return [
        step for step in new_plan if step.kind != StepKind.ISSUANCE and step.kind not in kept_kinds
    ]
