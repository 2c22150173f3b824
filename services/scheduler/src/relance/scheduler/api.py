"""HTTP routes of the scheduler: the plan preview (docs/api.md) and an invoice's plan."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.tenants import TenantDep
from relance.scheduler import service
from relance.scheduler.plan import ReminderRules
from relance.scheduler.schemas import Plan, Preview, PreviewIn, PreviewStep

router = APIRouter(prefix="/v1")


@router.post("/plans/preview", tags=["plans"])
async def preview_plan(body: PreviewIn, org: TenantDep) -> Preview:
    """The steps the organization's rules give an invoice sent on ``sent_on`` and due on
    ``due_on``. Nothing is created. ``issuance`` is shown at the reminder time."""
    rules = ReminderRules(
        country=org.country, timezone=org.timezone, reminder_time=org.reminder_time
    )
    return Preview(
        items=[
            PreviewStep(kind=step.kind, severity=step.severity, scheduled_for=step.at)
            for step in service.preview(rules, body.sent_on, body.due_on)
        ]
    )


@router.get(
    "/invoices/{invoice_id}/plan",
    tags=["plans"],
    responses={404: {"description": "no plan for this invoice in this organization"}},
)
async def get_plan(invoice_id: UUID, org: TenantDep, s: SessionDep, rt: RuntimeDep) -> Plan:
    """The invoice's plan as the scheduler holds it (404 until the invoice is sent)."""
    plan = await service.invoice_plan(s, org.id, invoice_id, now=rt.clock.now())
    return Plan(
        invoice_id=plan.invoice_id,
        due_date=plan.due_date,
        stopped=plan.stopped,
        held_until=plan.held_until,
        items=list(plan.steps),
    )
