"""HTTP bodies of the scheduler's routes, in and out."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relance.common.events.types import StepKind, StepView

EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)
MAX_SPAN = timedelta(days=3660)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sent_on: date = Field(ge=EARLIEST, le=LATEST, description="the day the invoice goes out")
    due_on: date = Field(ge=EARLIEST, le=LATEST, description="its due date")

    @model_validator(mode="after")
    def within_ten_years(self) -> Self:
        if abs(self.due_on - self.sent_on) > MAX_SPAN:
            raise ValueError("sent_on and due_on are more than ten years apart")
        return self


class PreviewStep(BaseModel):
    kind: StepKind
    severity: int
    scheduled_for: datetime


class Preview(BaseModel):
    items: list[PreviewStep]


class Plan(BaseModel):
    invoice_id: UUID
    due_date: date
    stopped: str | None = Field(description="why reminders stopped for good, if they did")
    held_until: datetime | None = Field(description="a scheduled payment holds steps until then")
    items: list[StepView] = Field(
        description="the steps in plan order; `held`, `hold_reason` and `goes_at` say where "
        "each stands against the holds"
    )
