"""The read model: what other services report about an invoice, one handler per event type.

Events about an invoice this organization does not have are ignored (logged): a foreign
or unknown id never creates or changes anything.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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
from relance.common.events.types import StepStatus, StepView
from relance.common.kafka import Handler
from relance.common.logging import get_logger
from relance.invoice_api import operations as ops
from relance.invoice_api import repository as repo
from relance.invoice_api.schemas import PaymentIn

log = get_logger(__name__)


async def _tenant(session: AsyncSession, event: Event[Any]) -> ops.Tenant | None:
    """The organization of the event, at the event's time, if it has the invoice."""
    org = await repo.organization_by_id(session, event.organization_id)
    if org is None or not await repo.invoice_exists(session, org.id, event.data.invoice_id):
        log.warning("event about an unknown invoice ignored", invoice_id=event.subject)
        return None
    return ops.Tenant(org=org, clock=FrozenClock(event.time))


async def on_reminder_planned(session: AsyncSession, event: Event[ReminderPlanned]) -> None:
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    steps = event.data.steps
    outcomes = await repo.step_outcomes_of(session, tenant.id, [s.step_id for s in steps])
    rows = []
    for position, step in enumerate(steps):
        outcome = outcomes.get(step.step_id)
        rows.append(
            {
                "step_id": step.step_id,
                "position": position,
                "kind": step.kind.value,
                "severity": step.severity,
                "scheduled_for": step.scheduled_for,
                # the notifier's word on a step outlives a plan published before it
                "status": outcome.status if outcome else step.status.value,
                "sent_at": outcome.at if outcome and outcome.status == "sent" else step.sent_at,
                "reason": outcome.reason if outcome else step.reason,
                "held": step.held and outcome is None,
                "hold_reason": step.hold_reason.value if step.hold_reason and not outcome else None,
                "goes_at": goes_at(step),
            }
        )
    await repo.replace_steps(session, tenant.id, event.data.invoice_id, rows)


def goes_at(step: StepView) -> datetime | None:
    """When the step goes; a plan from a scheduler older than the field says nothing, and
    there a planned step goes at its own time."""
    if "goes_at" not in step.model_fields_set and step.status is StepStatus.PLANNED:
        return step.scheduled_for
    return step.goes_at


async def on_email_sent(session: AsyncSession, event: Event[EmailSent]) -> None:
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    data = event.data
    await repo.record_step_outcome(session, tenant.id, data.step_id, "sent", data.sent_at, None)
    await repo.add_activity(
        session,
        tenant.id,
        data.invoice_id,
        data.sent_at,
        "email.sent",
        {"kind": data.kind.value, "recipient": data.recipient, "message_id": data.message_id},
    )


async def on_email_failed(session: AsyncSession, event: Event[EmailFailed]) -> None:
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    data = event.data
    await repo.record_step_outcome(
        session, tenant.id, data.step_id, "failed", data.failed_at, data.reason
    )
    await repo.add_activity(
        session,
        tenant.id,
        data.invoice_id,
        data.failed_at,
        "email.failed",
        {"kind": data.kind.value, "reason": data.reason},
    )


async def on_payment_suggested(session: AsyncSession, event: Event[PaymentSuggested]) -> None:
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    data = event.data
    await repo.update_invoice(session, tenant.id, data.invoice_id, {"payment_detected": True})
    await repo.add_activity(
        session,
        tenant.id,
        data.invoice_id,
        event.time,
        "payment.detected",
        {
            "match_id": str(data.match_id),
            "amount": format(data.amount, "f"),
            "bank_reference": data.bank_reference,
            "confidence": data.confidence,
        },
    )


async def _suggestion_closed(session: AsyncSession, event: Event[Any], kind: str) -> None:
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    await repo.update_invoice(
        session, tenant.id, event.data.invoice_id, {"payment_detected": False}
    )
    await repo.add_activity(
        session,
        tenant.id,
        event.data.invoice_id,
        event.time,
        kind,
        {"match_id": str(event.data.match_id)},
    )


async def on_suggestion_rejected(session: AsyncSession, event: Event[SuggestionRejected]) -> None:
    await _suggestion_closed(session, event, "payment.suggestion_rejected")


async def on_suggestion_confirmed(session: AsyncSession, event: Event[SuggestionConfirmed]) -> None:
    await _suggestion_closed(session, event, "payment.suggestion_confirmed")


async def on_payment_matched(session: AsyncSession, event: Event[PaymentMatched]) -> None:
    """A bank credit pays the invoice: record it once per match, never above the balance."""
    tenant = await _tenant(session, event)
    if tenant is None:
        return
    data = event.data
    if await repo.match_already_applied(session, data.match_id):
        return
    row = await ops.require_invoice(session, tenant, data.invoice_id, lock=True)
    balance = Decimal(row.total - row.paid)
    if row.sent_at is None or balance <= 0 or data.currency != row.currency:
        log.warning(
            "bank payment not applicable, left to the matcher's credit",
            reason="not sent" if row.sent_at is None else "paid" if balance <= 0 else "currency",
        )
        return
    amount = min(data.amount, balance)
    await ops.record_payment(
        session,
        tenant,
        data.invoice_id,
        PaymentIn(
            amount=format(amount, "f"), paid_on=data.booked_on, reference=data.bank_reference
        ),
        source="bank",
        match_id=data.match_id,
    )
    if row.payment_detected:
        await repo.update_invoice(session, tenant.id, data.invoice_id, {"payment_detected": False})


HANDLERS: dict[str, Handler] = {
    ReminderPlanned.event_type: on_reminder_planned,
    EmailSent.event_type: on_email_sent,
    EmailFailed.event_type: on_email_failed,
    PaymentSuggested.event_type: on_payment_suggested,
    SuggestionRejected.event_type: on_suggestion_rejected,
    SuggestionConfirmed.event_type: on_suggestion_confirmed,
    PaymentMatched.event_type: on_payment_matched,
}
