"""Topic ``reminder-events``: the scheduler's plans and the steps it fires."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from relance.common.events.envelope import InvoicePayload
from relance.common.events.types import StepKind, StepView

TOPIC = "reminder-events"


class ReminderPlanned(InvoicePayload, event_type="reminder.planned", topic=TOPIC):
    """The whole plan of one invoice with each step's status, after any change to it."""

    steps: tuple[StepView, ...]


class ReminderDue(InvoicePayload, event_type="reminder.due", topic=TOPIC):
    """A step's time has come: the notifier sends its email."""

    step_id: UUID
    kind: StepKind
    severity: int = Field(ge=0, le=5)
    scheduled_for: datetime
