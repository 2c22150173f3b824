"""What the scheduler does with each event it reads: one function per event type.

Every change to a plan publishes the whole plan again as ``reminder.planned`` (through the
outbox, in the same transaction), so that invoice-api's read model shows it. An event
about an invoice the scheduler has no plan for, or from another organization than the
plan's, changes nothing and is logged.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common import tenants
from relance.common.events import Event
from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceSent,
    InvoiceUpdated,
    PaymentReported,
    PaymentScheduled,
    RemindersSuspended,
)
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.payment_events import (
    PaymentSuggested,
    SuggestionConfirmed,
    SuggestionRejected,
)
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.events.types import StepKind, StepStatus, StepView
from relance.common.kafka import Handler
from relance.common.logging import get_logger
from relance.common.outbox import add_event
from relance.common.tracing import current_traceparent
from relance.scheduler import repository as repo
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


def rules_of(plan: Any) -> ReminderRules:
    return ReminderRules(
        country=plan.country, timezone=plan.timezone, reminder_time=plan.reminder_time
    )


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


async def publish_plan(
    session: AsyncSession, invoice_id: UUID, *, organization_id: UUID, at: datetime
) -> None:
    """Write the whole plan of the invoice, as it now stands, to the outbox."""
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


async def _plan(session: AsyncSession, event: Event[Any]) -> Any | None:
    """The event's invoice plan, locked, if it exists and belongs to the event's tenant."""
    plan = await repo.plan_of(session, event.data.invoice_id, lock=True)
    if plan is None or plan.organization_id != event.organization_id:
        log.warning("event about an invoice without a plan ignored", invoice_id=event.subject)
        return None
    return plan


async def on_invoice_sent(session: AsyncSession, event: Event[InvoiceSent]) -> None:
    data = event.data
    org, invoice = data.organization, data.invoice
    if invoice.sent_at is None:
        log.warning("invoice.sent without sent_at ignored", invoice_id=event.subject)
        return
    rules = ReminderRules(
        country=org.country,
        timezone=org.timezone,
        reminder_time=time.fromisoformat(org.reminder_time),
    )
    created = await repo.insert_plan(
        session,
        {
            "invoice_id": data.invoice_id,
            "organization_id": event.organization_id,
            "sent_at": invoice.sent_at,
            "due_date": invoice.due_date,
            "imported": data.imported,
            "country": rules.country,
            "timezone": rules.timezone,
            "reminder_time": rules.reminder_time,
        },
    )
    if not created:
        log.info("invoice already planned, repeated invoice.sent ignored", invoice_id=event.subject)
        return
    rows = step_rows(
        event.organization_id,
        data.invoice_id,
        plan_reminders(invoice.sent_at, invoice.due_date, rules),
        first_position=0,
    )
    if data.imported:
        # sent elsewhere: no issuance email from here
        rows[0] |= {"status": StepStatus.SKIPPED.value, "reason": "imported: sent elsewhere"}
    await repo.insert_steps(session, rows)
    if invoice.balance <= 0:
        await _stop(session, event, data.invoice_id, "paid")
        return
    await repo.reschedule(session, data.invoice_id)
    await publish_plan(
        session, data.invoice_id, organization_id=event.organization_id, at=event.time
    )


async def on_invoice_updated(session: AsyncSession, event: Event[InvoiceUpdated]) -> None:
    plan = await _plan(session, event)
    if plan is None or plan.stopped or event.data.invoice.due_date == plan.due_date:
        return
    new_due = event.data.invoice.due_date
    kept = {
        StepKind(row.kind)
        for row in await repo.steps_of(session, plan.invoice_id)
        if row.status != StepStatus.PLANNED.value or row.fired_at is not None
    }
    await repo.delete_waiting_steps(session, plan.invoice_id)
    added = steps_after_due_date_change(plan_reminders(plan.sent_at, new_due, rules_of(plan)), kept)
    await repo.insert_steps(
        session, step_rows(plan.organization_id, plan.invoice_id, added, first_position=100)
    )
    await repo.renumber_steps(session, plan.invoice_id)
    await repo.update_plan(session, plan.invoice_id, due_date=new_due)
    await repo.reschedule(session, plan.invoice_id)
    await publish_plan(
        session, plan.invoice_id, organization_id=event.organization_id, at=event.time
    )


async def _stop(session: AsyncSession, event: Event[Any], invoice_id: UUID, why: str) -> None:
    """Reminders stop for good: every step still waiting is cancelled."""
    await repo.update_plan(session, invoice_id, stopped=why)
    await repo.cancel_waiting_steps(session, invoice_id, why)
    await publish_plan(session, invoice_id, organization_id=event.organization_id, at=event.time)


async def on_payment_reported(session: AsyncSession, event: Event[PaymentReported]) -> None:
    plan = await _plan(session, event)
    if plan is None or plan.stopped:
        return
    if event.data.balance <= 0:
        await _stop(session, event, plan.invoice_id, "paid")
    # a part payment changes nothing: the next reminders quote the new balance


async def on_reminders_suspended(session: AsyncSession, event: Event[RemindersSuspended]) -> None:
    plan = await _plan(session, event)
    if plan is not None and not plan.stopped:
        await _stop(session, event, plan.invoice_id, "suspended")


async def on_handed_to_collection(
    session: AsyncSession, event: Event[InvoiceHandedToCollection]
) -> None:
    plan = await _plan(session, event)
    if plan is not None and not plan.stopped:
        await _stop(session, event, plan.invoice_id, "in_collection")


async def on_payment_scheduled(session: AsyncSession, event: Event[PaymentScheduled]) -> None:
    plan = await _plan(session, event)
    if plan is None or plan.stopped:
        return
    await repo.extend_hold(
        session, plan.invoice_id, schedule_hold_ends(event.data.planned_on, rules_of(plan))
    )
    await _hold_changed(session, event, event.data.invoice_id)


async def _hold_changed(session: AsyncSession, event: Event[Any], invoice_id: UUID) -> None:
    """A hold began, moved or ended: the steps' times change, and so does the plan a person
    sees (a step shown held, and when it goes)."""
    await repo.reschedule(session, invoice_id)
    plan = await repo.plan_of(session, invoice_id)
    if plan is not None and plan.stopped is None:
        await publish_plan(
            session, invoice_id, organization_id=event.organization_id, at=event.time
        )


async def on_payment_suggested(session: AsyncSession, event: Event[PaymentSuggested]) -> None:
    # kept even before the plan exists: the topics are not ordered with each other
    await repo.save_suggestion(
        session, event.data.match_id, event.organization_id, event.data.invoice_id, pending=True
    )
    await _hold_changed(session, event, event.data.invoice_id)


async def on_suggestion_decided(
    session: AsyncSession, event: Event[SuggestionConfirmed] | Event[SuggestionRejected]
) -> None:
    """The hold ends; steps that fell due meanwhile follow the catch-up rule. A confirmed
    match also records a payment, which reaches here as ``payment.reported``."""
    await repo.save_suggestion(
        session, event.data.match_id, event.organization_id, event.data.invoice_id, pending=False
    )
    await _hold_changed(session, event, event.data.invoice_id)


async def on_email_sent(session: AsyncSession, event: Event[EmailSent]) -> None:
    await _outcome(session, event, "sent", None)


async def on_email_failed(session: AsyncSession, event: Event[EmailFailed]) -> None:
    await _outcome(session, event, "failed", event.data.reason)


async def _outcome(
    session: AsyncSession,
    event: Event[EmailSent] | Event[EmailFailed],
    status: str,
    reason: str | None,
) -> None:
    at = event.data.sent_at if isinstance(event.data, EmailSent) else event.data.failed_at
    invoice_id = await repo.record_outcome(
        session, event.organization_id, event.data.step_id, status, at, reason
    )
    if invoice_id is None:
        log.warning("outcome of an unknown step ignored", step_id=str(event.data.step_id))
        return
    await publish_plan(session, invoice_id, organization_id=event.organization_id, at=event.time)


HANDLERS: dict[str, Handler] = {
    **tenants.HANDLERS,
    InvoiceSent.event_type: on_invoice_sent,
    InvoiceUpdated.event_type: on_invoice_updated,
    PaymentReported.event_type: on_payment_reported,
    PaymentScheduled.event_type: on_payment_scheduled,
    RemindersSuspended.event_type: on_reminders_suspended,
    InvoiceHandedToCollection.event_type: on_handed_to_collection,
    PaymentSuggested.event_type: on_payment_suggested,
    SuggestionConfirmed.event_type: on_suggestion_decided,
    SuggestionRejected.event_type: on_suggestion_decided,
    EmailSent.event_type: on_email_sent,
    EmailFailed.event_type: on_email_failed,
}
