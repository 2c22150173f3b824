"""Value types shared by several event payloads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# Money travels as a decimal string ("1250.00"), never as a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
]


class StepKind(StrEnum):
    ISSUANCE = "issuance"
    PRE_DUE = "pre_due"
    DUE = "due"
    OVERDUE = "overdue"
    ESCALATION_1 = "escalation_1"
    ESCALATION_2 = "escalation_2"
    ESCALATION_3 = "escalation_3"


class StepStatus(StrEnum):
    PLANNED = "planned"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    FAILED = "failed"


class HoldReason(StrEnum):
    """Why a step waits past its date: a payment announced for a date, or a bank payment
    that looks like the invoice's and waits for a person to confirm or reject it."""

    PAYMENT_SCHEDULED = "payment_scheduled"
    PAYMENT_DETECTED = "payment_detected"


class _Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrganizationSnapshot(_Snapshot):
    """What consumers need of the organization to plan and word reminders."""

    id: UUID
    name: str
    country: str = "FR"
    timezone: str = "Europe/Paris"
    locale: str = "fr"
    reminder_time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    sender_email: str | None = None


class CustomerSnapshot(_Snapshot):
    id: UUID
    name: str
    email: str | None = None
    locale: str | None = None
    ibans: tuple[str, ...] = ()
    external_id: str | None = None


class InvoiceSnapshot(_Snapshot):
    """An invoice as it stands after the change the event reports."""

    number: str
    currency: str
    total: Money
    paid: Money
    balance: Money
    issue_date: date
    due_date: date
    sent_at: datetime | None = None
    payment_reference: str | None = None
    external_id: str | None = None
    invoice_text: str | None = None


class StepView(_Snapshot):
    step_id: UUID
    kind: StepKind
    severity: int = Field(ge=0, le=5)
    scheduled_for: datetime
    status: StepStatus
    sent_at: datetime | None = None
    reason: str | None = None
    # where the step stands against the plan's holds (absent from older events: not held)
    held: bool = False
    hold_reason: HoldReason | None = None
    goes_at: datetime | None = None
