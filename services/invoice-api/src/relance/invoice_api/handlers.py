"""The events invoice-api reads, one thin handler per event type calling a use case: they
build the read model (reminder steps, their outcomes, detected payments) and record bank
payments.

Events about an invoice this organization does not have are ignored (logged): a foreign
or unknown id never creates or changes anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.clock import FrozenClock
from relance.common.events import Event
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.payment_events import (
    PaymentMatched,
    PaymentSuggested,
    SuggestionConfirmed,
    SuggestionRejected,
)
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.kafka import Handler
from relance.common.logging import get_logger
from relance.invoice_api.service import payments, reminders
from relance.invoice_api.service.organizations import tenant_of_invoice
from relance.invoice_api.service.tenant import Tenant

log = get_logger(__name__)


async def _tenant(session: AsyncSession, event: Event[Any]) -> Tenant | None:
    """The organization of the event, at the event's time, if it has the invoice."""
    tenant = await tenant_of_invoice(
        session, FrozenClock(event.time), event.organization_id, event.data.invoice_id
    )
    if tenant is None:
        log.warning("event about an unknown invoice ignored", invoice_id=event.subject)
    return tenant


async def on_reminder_planned(session: AsyncSession, event: Event[ReminderPlanned]) -> None:
    if tenant := await _tenant(session, event):
        await reminders.replace_plan(session, tenant, event.data.invoice_id, event.data.steps)


async def on_email_sent(session: AsyncSession, event: Event[EmailSent]) -> None:
    if tenant := await _tenant(session, event):
        await reminders.record_email_sent(session, tenant, event.data)


async def on_email_failed(session: AsyncSession, event: Event[EmailFailed]) -> None:
    if tenant := await _tenant(session, event):
        await reminders.record_email_failed(session, tenant, event.data)


async def on_payment_suggested(session: AsyncSession, event: Event[PaymentSuggested]) -> None:
    if tenant := await _tenant(session, event):
        await payments.note_detected_payment(session, tenant, event.data, event.time)


async def _suggestion_closed(session: AsyncSession, event: Event[Any], kind: str) -> None:
    if tenant := await _tenant(session, event):
        data = event.data
        await payments.close_suggestion(
            session, tenant, data.invoice_id, data.match_id, event.time, kind
        )


async def on_suggestion_rejected(session: AsyncSession, event: Event[SuggestionRejected]) -> None:
    await _suggestion_closed(session, event, "payment.suggestion_rejected")


async def on_suggestion_confirmed(session: AsyncSession, event: Event[SuggestionConfirmed]) -> None:
    await _suggestion_closed(session, event, "payment.suggestion_confirmed")


async def on_payment_matched(session: AsyncSession, event: Event[PaymentMatched]) -> None:
    if tenant := await _tenant(session, event):
        await payments.record_bank_payment(session, tenant, event.data)


HANDLERS: dict[str, Handler] = {
    ReminderPlanned.event_type: on_reminder_planned,
    EmailSent.event_type: on_email_sent,
    EmailFailed.event_type: on_email_failed,
    PaymentSuggested.event_type: on_payment_suggested,
    SuggestionRejected.event_type: on_suggestion_rejected,
    SuggestionConfirmed.event_type: on_suggestion_confirmed,
    PaymentMatched.event_type: on_payment_matched,
}
