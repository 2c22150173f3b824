"""SQL of partner events: each webhook-id is applied once per organization."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow
from relance.invoice_api.tables import (
    partner_events,
)


async def partner_event(session: AsyncSession, org_id: UUID, webhook_id: str) -> AnyRow | None:
    result = await session.execute(
        select(partner_events).where(
            partner_events.c.organization_id == org_id, partner_events.c.webhook_id == webhook_id
        )
    )
    return result.first()


async def claim_partner_event(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Record a webhook-id as applied; False if it already was. A concurrent request with
    the same id waits here for the first one's transaction, then gets False (or True if
    that one rolled back)."""
    claimed = await session.scalar(
        pg_insert(partner_events)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(partner_events.c.webhook_id)
    )
    return claimed is not None
