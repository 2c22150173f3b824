"""SQL of the reminder steps: the read model built from the scheduler's and the notifier's
events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events.types import HoldReason
from relance.invoice_api.repository.rows import AnyRow
from relance.invoice_api.tables import (
    reminder_steps,
    step_outcomes,
)


async def next_steps(
    session: AsyncSession, org_id: UUID, invoice_ids: Sequence[UUID]
) -> dict[UUID, AnyRow]:
    """The step of each invoice that goes next: the first planned one that will go (has a
    time) or that waits for a person's decision on a detected payment. A step the catch-up
    rule will skip is passed over."""
    if not invoice_ids:
        return {}
    step = reminder_steps.c
    query = (
        select(
            step.invoice_id,
            step.kind,
            step.scheduled_for,
            step.held,
            step.hold_reason,
            step.goes_at,
        )
        .where(
            step.organization_id == org_id,
            step.invoice_id.in_(invoice_ids),
            step.status == "planned",
            step.goes_at.is_not(None) | (step.hold_reason == HoldReason.PAYMENT_DETECTED.value),
        )
        .order_by(step.invoice_id, step.position)
        .ext(distinct_on(step.invoice_id))
    )
    return {row.invoice_id: row for row in (await session.execute(query)).all()}


async def replace_steps(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, steps: Sequence[dict[str, Any]]
) -> None:
    await session.execute(
        delete(reminder_steps).where(
            reminder_steps.c.organization_id == org_id, reminder_steps.c.invoice_id == invoice_id
        )
    )
    if steps:
        await session.execute(
            insert(reminder_steps),
            [{**step, "organization_id": org_id, "invoice_id": invoice_id} for step in steps],
        )


async def record_step_outcome(
    session: AsyncSession,
    org_id: UUID,
    step_id: UUID,
    status: str,
    at: datetime,
    reason: str | None,
) -> None:
    values = {"status": status, "at": at, "reason": reason}
    await session.execute(
        pg_insert(step_outcomes)
        .values(step_id=step_id, organization_id=org_id, **values)
        .on_conflict_do_update(index_elements=[step_outcomes.c.step_id], set_=values)
    )
    await session.execute(
        update(reminder_steps)
        .where(reminder_steps.c.organization_id == org_id, reminder_steps.c.step_id == step_id)
        .values(
            status=status,
            sent_at=at if status == "sent" else None,
            reason=reason,
            held=False,
            hold_reason=None,
        )
    )


async def step_outcomes_of(
    session: AsyncSession, org_id: UUID, step_ids: Sequence[UUID]
) -> dict[UUID, AnyRow]:
    if not step_ids:
        return {}
    query = select(step_outcomes).where(
        step_outcomes.c.organization_id == org_id, step_outcomes.c.step_id.in_(step_ids)
    )
    return {row.step_id: row for row in (await session.execute(query)).all()}


async def list_steps(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> Sequence[AnyRow]:
    query = (
        select(reminder_steps)
        .where(
            reminder_steps.c.organization_id == org_id, reminder_steps.c.invoice_id == invoice_id
        )
        .order_by(reminder_steps.c.position)
    )
    return (await session.execute(query)).all()
