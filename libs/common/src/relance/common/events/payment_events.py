"""Topic ``payment-events``: what the payment-matcher found in bank transactions."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from relance.common.events.envelope import InvoicePayload
from relance.common.events.types import Money

TOPIC = "payment-events"


class PaymentMatched(InvoicePayload, event_type="payment.matched", topic=TOPIC):
    """A bank credit surely pays (part of) this invoice: record the payment."""

    match_id: UUID
    bank_reference: str
    amount: Money
    currency: str
    booked_on: date
    confirmed_by_person: bool = False


class PaymentSuggested(InvoicePayload, event_type="payment.suggested", topic=TOPIC):
    """A bank credit probably pays this invoice: hold reminders until a person decides."""

    match_id: UUID
    bank_reference: str
    amount: Money
    currency: str
    booked_on: date
    confidence: float = Field(ge=0, le=1)


class SuggestionConfirmed(InvoicePayload, event_type="payment.suggestion_confirmed", topic=TOPIC):
    match_id: UUID


class SuggestionRejected(InvoicePayload, event_type="payment.suggestion_rejected", topic=TOPIC):
    match_id: UUID
