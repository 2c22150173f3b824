"""HTTP bodies of partner webhook endpoints and their deliveries, in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relance.notifier.webhooks.partners import WEBHOOK_TYPES

WebhookType = Literal[
    "invoice.sent",
    "invoice.status_changed",
    "invoice.paid",
    "reminder.sent",
    "reminder.failed",
    "reminders.suspended",
    "payment.detected",
    "payment.matched",
]
assert set(WebhookType.__args__) == set(WEBHOOK_TYPES)  # type: ignore[attr-defined]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    events: list[WebhookType] = Field(min_length=1, max_length=len(WEBHOOK_TYPES))

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        return sorted(set(events))


class EndpointOut(BaseModel):
    id: UUID
    url: str
    events: list[str]
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="shown once: verify each delivery's webhook-signature")


class Endpoints(BaseModel):
    items: list[EndpointOut]


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: UUID
    type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Deliveries(BaseModel):
    items: list[DeliveryOut]
