"""What the scheduler does with each event it reads: one thin function per event type,
which takes the values it needs out of the event and calls a use case of
:mod:`relance.scheduler.service`. Each change is dated by the event's own time."""

from __future__ import annotations

from datetime import time

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
from relance.common.kafka import Handler
from relance.common.logging import get_logger
from relance.scheduler import service
from relance.scheduler.plan import ReminderRules

log = get_logger(__name__)


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
    await service.plan_invoice(
        session,
        service.InvoiceToPlan(
            organization_id=event.organization_id,
            invoice_id=data.invoice_id,
            sent_at=invoice.sent_at,
            due_date=invoice.due_date,
            balance=invoice.balance,
            imported=data.imported,
            rules=rules,
        ),
        at=event.time,
    )


async def on_invoice_updated(session: AsyncSession, event: Event[InvoiceUpdated]) -> None:
    await service.replan(
        session,
        event.organization_id,
        event.data.invoice_id,
        event.data.invoice.due_date,
        at=event.time,
    )


async def on_payment_reported(session: AsyncSession, event: Event[PaymentReported]) -> None:
    await service.apply_payment(
        session, event.organization_id, event.data.invoice_id, event.data.balance, at=event.time
    )


async def on_reminders_suspended(session: AsyncSession, event: Event[RemindersSuspended]) -> None:
    await service.stop_reminders(
        session, event.organization_id, event.data.invoice_id, "suspended", at=event.time
    )


async def on_handed_to_collection(
    session: AsyncSession, event: Event[InvoiceHandedToCollection]
) -> None:
    await service.stop_reminders(
        session, event.organization_id, event.data.invoice_id, "in_collection", at=event.time
    )


async def on_payment_scheduled(session: AsyncSession, event: Event[PaymentScheduled]) -> None:
    await service.hold_for_scheduled_payment(
        session,
        event.organization_id,
        event.data.invoice_id,
        event.data.planned_on,
        at=event.time,
    )


async def on_payment_suggested(session: AsyncSession, event: Event[PaymentSuggested]) -> None:
    await service.record_suggestion(
        session,
        event.organization_id,
        event.data.invoice_id,
        event.data.match_id,
        pending=True,
        at=event.time,
    )


async def on_suggestion_decided(
    session: AsyncSession, event: Event[SuggestionConfirmed] | Event[SuggestionRejected]
) -> None:
    """A confirmed match also records a payment, which reaches here as ``payment.reported``."""
    await service.record_suggestion(
        session,
        event.organization_id,
        event.data.invoice_id,
        event.data.match_id,
        pending=False,
        at=event.time,
    )


async def on_email_sent(session: AsyncSession, event: Event[EmailSent]) -> None:
    await service.record_outcome(
        session,
        event.organization_id,
        event.data.step_id,
        "sent",
        event.data.sent_at,
        None,
        at=event.time,
    )


async def on_email_failed(session: AsyncSession, event: Event[EmailFailed]) -> None:
    await service.record_outcome(
        session,
        event.organization_id,
        event.data.step_id,
        "failed",
        event.data.failed_at,
        event.data.reason,
        at=event.time,
    )


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
