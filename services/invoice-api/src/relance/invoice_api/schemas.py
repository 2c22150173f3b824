"""The shapes of the HTTP API: what clients send (validated field by field) and receive."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from relance.common.calendar import is_supported_country
from relance.common.events.types import HoldReason, StepKind, StepStatus
from relance.common.fields import Amount, Currency, Iban
from relance.common.money import amount_problem
from relance.invoice_api.status import InvoiceStatus

Locale = Literal["fr", "en"]


def _check_country(code: str) -> str:
    if not is_supported_country(code):
        raise ValueError(f"no public holiday calendar for country {code!r}")
    return code.upper()


def _check_timezone(name: str) -> str:
    if name not in available_timezones():
        raise ValueError(f"{name!r} is not an IANA time zone such as Europe/Paris")
    return name


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("instants need a UTC offset, e.g. 2026-03-02T10:15:00+01:00")
    return value


MoneyOut = Annotated[Decimal, PlainSerializer(lambda v: format(v, "f"), return_type=str)]
Instant = Annotated[datetime, AfterValidator(_aware)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ExternalId = Annotated[str, Field(min_length=1, max_length=100)]


class Input(BaseModel):
    # NUL and lone surrogates never get here: relance.common.textguard refuses them first
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganizationIn(Input):
    name: Name
    country: Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_check_country)] = (
        "FR"
    )
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_check_timezone)] = "Europe/Paris"
    locale: Locale = "fr"
    reminder_time: time = time(9, 0)
    sender_email: EmailStr | None = None

    @field_validator("reminder_time", mode="before")
    @classmethod
    def _hours_and_minutes(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("reminder_time is HH:MM, e.g. 09:00")
        return value


class OrganizationOut(BaseModel):
    id: UUID
    name: str
    country: str
    timezone: str
    locale: str
    reminder_time: str
    sender_email: str | None
    created_at: datetime


class OrganizationCreated(OrganizationOut):
    api_key: str = Field(description="Shown once: only its hash is kept.")


class CustomerIn(Input):
    name: Name
    email: EmailStr | None = None
    locale: Locale | None = None
    ibans: list[Iban] = Field(default_factory=list, max_length=10)
    external_id: ExternalId | None = None


class CustomerPatch(Input):
    name: Name | None = None
    email: EmailStr | None = None
    locale: Locale | None = None
    ibans: list[Iban] | None = Field(default=None, max_length=10)
    external_id: ExternalId | None = None


class CustomerOut(BaseModel):
    id: UUID
    name: str
    email: str | None
    locale: str | None
    ibans: list[str]
    external_id: str | None
    created_at: datetime


class InvoiceIn(Input):
    customer_id: UUID
    number: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w./#-]+( [\w./#-]+)*$")]
    issue_date: date
    due_date: date
    currency: Currency = "EUR"
    total: Amount
    invoice_text: Annotated[str, Field(max_length=2000)] | None = None
    payment_reference: Annotated[str, Field(min_length=1, max_length=35)] | None = None
    external_id: ExternalId | None = None
    sent_at: Instant | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceIn:
        if self.due_date < self.issue_date:
            raise ValueError("due_date is before issue_date")
        problem = amount_problem(self.total, self.currency)
        if problem:
            raise ValueError(f"total {problem}")
        return self


class InvoicePatch(Input):
    due_date: date | None = None
    invoice_text: Annotated[str, Field(max_length=2000)] | None = None
    payment_reference: Annotated[str, Field(min_length=1, max_length=35)] | None = None
    external_id: ExternalId | None = None


class NextStep(BaseModel):
    """The reminder that goes next, at the date it really goes."""

    kind: StepKind
    scheduled_for: datetime = Field(
        description="when it goes if nothing changes: its own date, the end of a payment "
        "announced for a date, or at once once a hold found it past. While a detected payment "
        "waits for a person it goes at no date: this is then the date the plan gave it"
    )
    planned_for: datetime = Field(description="the date the plan gave it")
    held: bool = Field(description="a payment keeps it back past `planned_for`")
    hold_reason: HoldReason | None = Field(
        description="`payment_scheduled`: a payment announced for a date; `payment_detected`: "
        "a bank payment waits for a person to confirm or reject it (nothing goes until then)"
    )
    goes_at: datetime | None = Field(
        description="when it goes if nothing changes; null while it waits for a person"
    )


class ScheduledPayment(BaseModel):
    planned_on: date
    amount: MoneyOut | None
    until: date


class InvoiceOut(BaseModel):
    id: UUID
    number: str
    customer_id: UUID
    customer_name: str
    status: InvoiceStatus
    currency: str
    total: MoneyOut
    paid: MoneyOut
    balance: MoneyOut
    issue_date: date
    due_date: date
    sent_at: datetime | None
    imported: bool
    payment_detected: bool
    reminders_suspended: bool
    in_collection: bool
    scheduled_payment: ScheduledPayment | None
    next_step: NextStep | None
    invoice_text: str | None
    payment_reference: str | None
    external_id: str | None
    created_at: datetime


T = TypeVar("T")


class PaymentIn(Input):
    amount: Amount
    paid_on: date
    reference: Annotated[str, Field(min_length=1, max_length=140)] | None = None


class PaymentOut(BaseModel):
    id: UUID
    invoice_id: UUID
    amount: MoneyOut
    paid_on: date
    reference: str | None
    source: str
    invoice: InvoiceOut


class PartnerPayment(Input):
    """A payment the partner recorded on its side, for an invoice it names by our number or
    by its own id (``external_id``); when both are given they must name the same invoice."""

    invoice_number: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    external_id: ExternalId | None = None
    amount: Amount
    paid_on: date
    reference: Annotated[str, Field(min_length=1, max_length=140)] | None = None

    @model_validator(mode="after")
    def _names_an_invoice(self) -> PartnerPayment:
        if self.invoice_number is None and self.external_id is None:
            raise ValueError("give the invoice's invoice_number or external_id")
        return self


class PartnerEventIn(Input):
    """The body of a partner's signed request (Standard Webhooks: type, timestamp, data)."""

    type: Literal["payment.recorded"]
    timestamp: Instant | None = None
    data: PartnerPayment


class PartnerEventOut(BaseModel):
    webhook_id: str
    status: Literal["recorded", "already_applied"] = Field(
        description="already_applied: this webhook-id was applied before; nothing was done again"
    )
    invoice_id: UUID
    payment_id: UUID


class PartnerSecret(BaseModel):
    secret: str = Field(
        description="Signs the partner's requests to POST /v1/partner-events (Standard "
        "Webhooks). Shown once; a new one replaces it at once."
    )


class PaymentScheduleIn(Input):
    planned_on: date
    amount: Amount | None = None


class SuspendIn(Input):
    reason: Annotated[str, Field(max_length=500)] | None = None


class StepOut(BaseModel):
    kind: StepKind
    severity: int
    scheduled_for: datetime = Field(description="the date the plan gives the step")
    status: StepStatus
    sent_at: datetime | None = None
    reason: str | None = None
    held: bool = Field(default=False, description="a payment keeps this planned step back")
    hold_reason: HoldReason | None = Field(
        default=None, description="`payment_scheduled` or `payment_detected`, when held"
    )
    goes_at: datetime | None = Field(
        default=None,
        description="for a planned step, when it goes if nothing changes; null when it will "
        "not go by itself (a person must decide on a detected payment, or a later step goes "
        "instead under the catch-up rule)",
    )


class Items(BaseModel, Generic[T]):
    items: list[T]


class ActivityOut(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any]


class AgingBucket(BaseModel):
    invoice_count: int
    customer_count: int
    amount: MoneyOut


class AgingReport(BaseModel):
    currency: str
    as_of: date
    buckets: dict[str, AgingBucket]
