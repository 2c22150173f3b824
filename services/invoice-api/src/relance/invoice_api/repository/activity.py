"""SQL of an invoice's activity feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow
from relance.invoice_api.tables import (
    activity,
)


async def add_activity(
    session: AsyncSession,
    org_id: UUID,
    invoice_id: UUID,
    at: datetime,
    kind: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(activity).values(
            organization_id=org_id, invoice_id=invoice_id, at=at, kind=kind, detail=detail or {}
        )
    )


async def list_activity(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, limit: int
) -> Sequence[AnyRow]:
    query = (
        select(activity.c.at, activity.c.kind, activity.c.detail)
        .where(activity.c.organization_id == org_id, activity.c.invoice_id == invoice_id)
        .order_by(activity.c.at.desc(), activity.c.id.desc())
        .limit(limit)
    )
    return (await session.execute(query)).all()
