"""The scheduler's use cases: plan an invoice, replan it, apply what happens to it (a
payment, a hold, a suspension, an email's outcome), publish its plan, fire the due steps.

This is the only module that writes events. Every change to a plan publishes the whole
plan again as ``reminder.planned`` (through the outbox, in the same transaction), so that
invoice-api's read model shows it. The use cases take plain values and the instant of the
change (``at``: the time of the event that caused it, or the firing's clock), never an
event or an HTTP body. A change about an invoice the scheduler has no plan for, or from
another organization than the plan's, does nothing and is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import NotFound
from relance.common.events import Event
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.events.types import StepKind, StepStatus, StepView
from relance.common.logging import get_logger
from relance.common.outbox import add_event
from relance.common.tracing import current_traceparent
from relance.scheduler import repository as repo
from relance.scheduler.due_events import due_rows
from relance.scheduler.plan import (
    PlannedStep,
    ReminderRules,
    StepOutlook,
    StepState,
    plan_reminders,
    schedule_hold_ends,
    step_outlooks,
    steps_after_due_date_change,
)

log = get_logger(__name__)
SOURCE = "scheduler"


@dataclass(frozen=True, slots=True)
class InvoiceToPlan:
    """A sent invoice, with the organization's reminder rules as they were when it went."""

    organization_id: UUID
    invoice_id: UUID
    sent_at: datetime
    due_date: date
    balance: Decimal
    imported: bool
    rules: ReminderRules


@dataclass(frozen=True, slots=True)
class InvoicePlan:
    """An invoice's plan as a person is shown it at one instant."""

    invoice_id: UUID
    due_date: date
    stopped: str | None
    held_until: datetime | None
    steps: tuple[StepView, ...]


@dataclass(frozen=True, slots=True)
class FiredBatch:
    """What one claim did: steps taken, those of them fired (the others were skipped), and
    the due time of the oldest one taken."""

    claimed: int
    fired: int
    oldest_due: datetime | None


# Reading a plan


def rules_of(plan: Any) -> ReminderRules:
    return ReminderRules(
        country=plan.country, timezone=plan.timezone, reminder_time=plan.reminder_time
    )


def step_view(row: Any, outlook: StepOutlook) -> StepView:
    return StepView(
        step_id=row.id,
        kind=StepKind(row.kind),
        severity=row.severity,
        scheduled_for=row.scheduled_for,
        status=StepStatus(row.status),
        sent_at=row.sent_at,
        reason=row.reason,
        held=outlook.held,
        hold_reason=outlook.hold_reason,
        goes_at=outlook.goes_at,
    )


async def plan_views(session: AsyncSession, plan: Any, now: datetime) -> tuple[StepView, ...]:
    """Every step of the plan as it stands at ``now``, each with where it stands against
    the plan's holds."""
    rows = await repo.steps_of(session, plan.invoice_id)
    running = plan.stopped is None
    outlooks = step_outlooks(
        [StepState(row.scheduled_for, StepStatus(row.status), row.fired_at) for row in rows],
        hold_until=plan.hold_until if running else None,
        awaiting_decision=running
        and await repo.awaits_decision(session, plan.organization_id, plan.invoice_id),
        now=now,
    )
    return tuple(step_view(row, outlook) for row, outlook in zip(rows, outlooks, strict=True))


async def invoice_plan(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, *, now: datetime
) -> InvoicePlan:
    """The invoice's plan as it stands at ``now``; NotFound until the invoice is sent, and
    for another organization's invoice."""
    plan = await repo.plan_of(session, invoice_id)
    if plan is None or plan.organization_id != organization_id:
        raise NotFound("plan for this invoice")
    return InvoicePlan(
        invoice_id=plan.invoice_id,
        due_date=plan.due_date,
        stopped=plan.stopped,
        held_until=plan.hold_until,
        steps=await plan_views(session, plan, now),
    )


def preview(rules: ReminderRules, sent_on: date, due_on: date) -> list[PlannedStep]:
    """The steps ``rules`` give an invoice sent on ``sent_on`` (at the reminder time) and
    due on ``due_on``. Nothing is stored."""
    sent_at = datetime.combine(sent_on, rules.reminder_time, tzinfo=rules.zone)
    return plan_reminders(sent_at, due_on, rules)


async def publish_plan(
    session: AsyncSession, invoice_id: UUID, *, organization_id: UUID, at: datetime
) -> None:
    """Write the whole plan of the invoice, as it stands at ``at``, to the outbox."""
    plan = await repo.plan_of(session, invoice_id)
    if plan is None or plan.organization_id != organization_id:
        return
    await add_event(
        session,
        Event.new(
            ReminderPlanned(invoice_id=invoice_id, steps=await plan_views(session, plan, at)),
            source=SOURCE,
            organization_id=organization_id,
            time=at,
        ),
    )


# Planning


def step_rows(
    organization_id: UUID, invoice_id: UUID, planned: list[PlannedStep], *, first_position: int
) -> list[dict[str, Any]]:
    traceparent = current_traceparent()
    return [
        {
            "id": step_id(invoice_id, step.kind, step.at),
            "organization_id": organization_id,
            "invoice_id": invoice_id,
            "position": first_position + position,
            "kind": step.kind.value,
            "severity": step.severity,
            "scheduled_for": step.at,
            "status": StepStatus.PLANNED.value,
            "reason": None,
            # the span of the event that planned it: its reminder.due continues that trace
            "traceparent": traceparent,
        }
        for position, step in enumerate(planned)
    ]


def step_id(invoice_id: UUID, kind: StepKind, at: datetime) -> UUID:
    """A step's id, the same however often the same plan is computed."""
    return uuid5(invoice_id, f"{kind.value}@{at.isoformat()}")


async def _running_plan(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID
) -> Any | None:
    """The invoice's plan, locked, if it exists, belongs to ``organization_id`` and has not
    stopped."""
    plan = await repo.plan_of(session, invoice_id, lock=True)
    if plan is None or plan.organization_id != organization_id:
        log.warning("event about an invoice without a plan ignored", invoice_id=str(invoice_id))
        return None
    return None if plan.stopped else plan


async def plan_invoice(session: AsyncSession, invoice: InvoiceToPlan, *, at: datetime) -> None:
    """Create the plan of a sent invoice and publish it. An imported invoice's issuance is
    skipped (it was sent elsewhere); one with nothing left to pay stops as ``paid`` at once.
    An invoice planned already is left as it is."""
    rules = invoice.rules
    created = await repo.insert_plan(
        session,
        {
            "invoice_id": invoice.invoice_id,
            "organization_id": invoice.organization_id,
            "sent_at": invoice.sent_at,
            "due_date": invoice.due_date,
            "imported": invoice.imported,
            "country": rules.country,
            "timezone": rules.timezone,
            "reminder_time": rules.reminder_time,
        },
    )
    if not created:
        log.info(
            "invoice already planned, repeated invoice.sent ignored",
            invoice_id=str(invoice.invoice_id),
        )
        return
    rows = step_rows(
        invoice.organization_id,
        invoice.invoice_id,
        plan_reminders(invoice.sent_at, invoice.due_date, rules),
        first_position=0,
    )
    if invoice.imported:
        # sent elsewhere: no issuance email from here
        rows[0] |= {"status": StepStatus.SKIPPED.value, "reason": "imported: sent elsewhere"}
    await repo.insert_steps(session, rows)
    if invoice.balance <= 0:
        await _stop(session, invoice.organization_id, invoice.invoice_id, "paid", at=at)
        return
    await repo.reschedule(session, invoice.invoice_id)
    await publish_plan(session, invoice.invoice_id, organization_id=invoice.organization_id, at=at)


async def replan(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, due_date: date, *, at: datetime
) -> None:
    """The invoice is now due on ``due_date``: its waiting steps are planned again from the
    original send instant; the steps that went stay."""
    plan = await _running_plan(session, organization_id, invoice_id)
    if plan is None or due_date == plan.due_date:
        return
    kept = {
        StepKind(row.kind)
        for row in await repo.steps_of(session, plan.invoice_id)
        if row.status != StepStatus.PLANNED.value or row.fired_at is not None
    }
    await repo.delete_waiting_steps(session, plan.invoice_id)
    added = steps_after_due_date_change(
        plan_reminders(plan.sent_at, due_date, rules_of(plan)), kept
    )
    await repo.insert_steps(
        session, step_rows(plan.organization_id, plan.invoice_id, added, first_position=100)
    )
    await repo.renumber_steps(session, plan.invoice_id)
    await repo.update_plan(session, plan.invoice_id, due_date=due_date)
    await repo.reschedule(session, plan.invoice_id)
    await publish_plan(session, plan.invoice_id, organization_id=organization_id, at=at)


# Stopping


async def _stop(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, why: str, *, at: datetime
) -> None:
    """Reminders stop for good: every step still waiting is cancelled."""
    await repo.update_plan(session, invoice_id, stopped=why)
    await repo.cancel_waiting_steps(session, invoice_id, why)
    await publish_plan(session, invoice_id, organization_id=organization_id, at=at)


async def apply_payment(
    session: AsyncSession,
    organization_id: UUID,
    invoice_id: UUID,
    balance: Decimal,
    *,
    at: datetime,
) -> None:
    """A payment left ``balance`` to pay: at zero the plan stops as ``paid``. A part payment
    changes nothing, since the next reminders quote the new balance."""
    plan = await _running_plan(session, organization_id, invoice_id)
    if plan is not None and balance <= 0:
        await _stop(session, organization_id, plan.invoice_id, "paid", at=at)


async def stop_reminders(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, why: str, *, at: datetime
) -> None:
    """Reminders stop for good, for ``why`` (``suspended``, ``in_collection``)."""
    plan = await _running_plan(session, organization_id, invoice_id)
    if plan is not None:
        await _stop(session, organization_id, plan.invoice_id, why, at=at)


# Holds


async def hold_for_scheduled_payment(
    session: AsyncSession,
    organization_id: UUID,
    invoice_id: UUID,
    planned_on: date,
    *,
    at: datetime,
) -> None:
    """A payment is announced for ``planned_on``: the waiting steps wait until its hold
    ends (the latest end wins)."""
    plan = await _running_plan(session, organization_id, invoice_id)
    if plan is None:
        return
    await repo.extend_hold(session, plan.invoice_id, schedule_hold_ends(planned_on, rules_of(plan)))
    await _hold_changed(session, organization_id, invoice_id, at=at)


async def record_suggestion(
    session: AsyncSession,
    organization_id: UUID,
    invoice_id: UUID,
    match_id: UUID,
    *,
    pending: bool,
    at: datetime,
) -> None:
    """A probable payment waits for a person (``pending``), or was decided: the waiting
    steps are held while any suggestion waits. Kept even before the plan exists, since the
    topics are not ordered with each other. Once decided, the steps that fell due meanwhile
    follow the catch-up rule."""
    await repo.save_suggestion(session, match_id, organization_id, invoice_id, pending=pending)
    await _hold_changed(session, organization_id, invoice_id, at=at)


async def _hold_changed(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, *, at: datetime
) -> None:
    """A hold began, moved or ended: the steps' times change, and so does the plan a person
    sees (a step shown held, and when it goes)."""
    await repo.reschedule(session, invoice_id)
    plan = await repo.plan_of(session, invoice_id)
    if plan is not None and plan.stopped is None:
        await publish_plan(session, invoice_id, organization_id=organization_id, at=at)


# Outcomes and firing


async def record_outcome(
    session: AsyncSession,
    organization_id: UUID,
    step_id: UUID,
    status: str,
    outcome_at: datetime,
    reason: str | None,
    *,
    at: datetime,
) -> None:
    """The notifier sent (``sent``) or could not send (``failed``) a step's email at
    ``outcome_at``."""
    invoice_id = await repo.record_outcome(
        session, organization_id, step_id, status, outcome_at, reason
    )
    if invoice_id is None:
        log.warning("outcome of an unknown step ignored", step_id=str(step_id))
        return
    await publish_plan(session, invoice_id, organization_id=organization_id, at=at)


async def fire_due_steps(session: AsyncSession, now: datetime, limit: int) -> FiredBatch:
    """Claim up to ``limit`` steps due at ``now`` and write what they cause: a
    ``reminder.due`` per fired step, and the plans that changed (skipped steps, or a step a
    payment's hold kept back past its own time)."""
    claimed = await repo.claim_due_steps(session, now, limit)
    if not claimed:
        return FiredBatch(claimed=0, fired=0, oldest_due=None)
    fired = [row for row in claimed if not row["superseded"]]
    await repo.write_due_events(
        session,
        due_rows(fired, now, source=SOURCE, traceparents=[row["traceparent"] for row in fired]),
    )
    await _publish_changed_plans(session, claimed, now)
    return FiredBatch(
        claimed=len(claimed),
        fired=len(fired),
        oldest_due=min(row["due_at"] for row in claimed),
    )


async def _publish_changed_plans(
    session: AsyncSession, claimed: Sequence[Any], now: datetime
) -> None:
    # skipped steps, and a step a payment's hold kept back (it fires at the hold's end,
    # after its own time), change the plan a person sees: publish it again
    changed = {
        row["invoice_id"]: row
        for row in claimed
        if row["superseded"] or row["due_at"] > row["scheduled_for"]
    }
    for row in changed.values():
        await publish_plan(
            session, row["invoice_id"], organization_id=row["organization_id"], at=now
        )
