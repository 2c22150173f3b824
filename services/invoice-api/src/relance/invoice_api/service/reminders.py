"""The reminders as users see them: the plan the scheduler last published for an invoice,
with what the notifier reported for each step (a read model built from their events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.types import StepStatus, StepView
from relance.invoice_api import repository as repo
from relance.invoice_api.service.tenant import Tenant


async def replace_plan(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, steps: Sequence[StepView]
) -> None:
    """The invoice's steps become ``steps``, in this order."""
    outcomes = await repo.step_outcomes_of(session, tenant.id, [s.step_id for s in steps])
    rows: list[dict[str, Any]] = []
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
    await repo.replace_steps(session, tenant.id, invoice_id, rows)


def goes_at(step: StepView) -> datetime | None:
    """When the step goes; a plan from a scheduler older than the field says nothing, and
    there a planned step goes at its own time."""
    if "goes_at" not in step.model_fields_set and step.status is StepStatus.PLANNED:
        return step.scheduled_for
    return step.goes_at


async def record_email_sent(session: AsyncSession, tenant: Tenant, data: EmailSent) -> None:
    """The notifier sent a step's email: the step's outcome and the activity feed."""
    await repo.record_step_outcome(session, tenant.id, data.step_id, "sent", data.sent_at, None)
    await repo.add_activity(
        session,
        tenant.id,
        data.invoice_id,
        data.sent_at,
        "email.sent",
        {"kind": data.kind.value, "recipient": data.recipient, "message_id": data.message_id},
    )


async def record_email_failed(session: AsyncSession, tenant: Tenant, data: EmailFailed) -> None:
    """The notifier gave up on a step's email: the step's outcome and the activity feed."""
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
