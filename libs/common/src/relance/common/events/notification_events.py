"""Topic ``notification-events``: what became of each email the notifier tried to send."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from relance.common.events.envelope import InvoicePayload
from relance.common.events.types import StepKind

TOPIC = "notification-events"


class EmailSent(InvoicePayload, event_type="email.sent", topic=TOPIC):
    step_id: UUID
    kind: StepKind
    message_id: str
    recipient: str
    sent_at: datetime


class EmailFailed(InvoicePayload, event_type="email.failed", topic=TOPIC):
    step_id: UUID
    kind: StepKind
    reason: str
    failed_at: datetime
