"""The inbox: ids of the events a service has applied, so that a redelivery does nothing."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.tables import inbox


async def claim_event(session: AsyncSession, event_id: UUID, event_type: str) -> bool:
    """Record the event as applied in the current transaction; False if it already was."""
    result = await session.execute(
        insert(inbox)
        .values(event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
        .returning(inbox.c.event_id)
    )
    return result.first() is not None
