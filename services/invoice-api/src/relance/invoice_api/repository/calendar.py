"""SQL of the calendar loop (workers.py): invoices whose status the calendar changes now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow
from relance.invoice_api.tables import (
    invoices,
    organizations,
)


async def claim_status_changes(session: AsyncSession, now: datetime, limit: int) -> list[AnyRow]:
    """Up to ``limit`` invoices whose calendar change is due, locked for this transaction
    (rows another claim or a request holds are skipped), with their organization's zone.
    Across organizations on purpose: the loop works for all of them."""
    due = (
        select(
            invoices.c.id,
            invoices.c.organization_id,
            invoices.c.sent_at,
            invoices.c.total,
            invoices.c.paid,
            invoices.c.due_date,
            invoices.c.in_collection_at,
            invoices.c.scheduled_until,
            invoices.c.status_announced,
            invoices.c.next_status_change_at,
            organizations.c.timezone,
        )
        .join(organizations, organizations.c.id == invoices.c.organization_id)
        .where(invoices.c.next_status_change_at <= now)
        .order_by(invoices.c.next_status_change_at)
        .limit(limit)
        .with_for_update(of=invoices, skip_locked=True)
    )
    return list((await session.execute(due)).all())


SET_STATUS_TRACKING = (
    update(invoices)
    .where(
        invoices.c.organization_id == bindparam("b_organization_id"),
        invoices.c.id == bindparam("b_id"),
    )
    .values(
        status_announced=bindparam("b_status_announced"),
        next_status_change_at=bindparam("b_next_status_change_at"),
    )
)


async def set_status_tracking(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store, for claimed invoices (``organization_id``, ``id``, ``status_announced``,
    ``next_status_change_at``),
    what was announced and when the calendar changes them next."""
    if rows:
        await session.execute(
            SET_STATUS_TRACKING, [{f"b_{name}": value for name, value in r.items()} for r in rows]
        )


async def next_status_change_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(invoices.c.next_status_change_at)))
