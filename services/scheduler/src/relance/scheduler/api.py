"""HTTP routes of the scheduler: the plan preview (docs/api.md) and an invoice's plan."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Self
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.events.types import StepKind, StepView
from relance.common.tenants import AuthorizationHeader, Tenant, tenant_by_key
from relance.scheduler import repository as repo
from relance.scheduler.plan import ReminderRules, plan_reminders
from relance.scheduler.service import plan_views

router = APIRouter(prefix="/v1")

EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)
MAX_SPAN = timedelta(days=3660)


async def tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(tenant)]


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


@router.post("/plans/preview", tags=["plans"])
async def preview_plan(body: PreviewIn, org: TenantDep) -> Preview:
    """The steps the organization's rules give an invoice sent on ``sent_on`` and due on
    ``due_on``. Nothing is created. ``issuance`` is shown at the reminder time."""
    rules = ReminderRules(
        country=org.country, timezone=org.timezone, reminder_time=org.reminder_time
    )
    sent_at = datetime.combine(body.sent_on, rules.reminder_time, tzinfo=rules.zone)
    return Preview(
        items=[
            PreviewStep(kind=step.kind, severity=step.severity, scheduled_for=step.at)
            for step in plan_reminders(sent_at, body.due_on, rules)
        ]
    )


@router.get(
    "/invoices/{invoice_id}/plan",
    tags=["plans"],
    responses={404: {"description": "no plan for this invoice in this organization"}},
)
async def get_plan(invoice_id: UUID, org: TenantDep, s: SessionDep, rt: RuntimeDep) -> Plan:
    """The invoice's plan as the scheduler holds it (404 until the invoice is sent)."""
    plan = await repo.plan_of(s, invoice_id)
    if plan is None or plan.organization_id != org.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no plan for this invoice")
    return Plan(
        invoice_id=plan.invoice_id,
        due_date=plan.due_date,
        stopped=plan.stopped,
        held_until=plan.hold_until,
        items=list(await plan_views(s, plan, rt.clock.now())),
    )
