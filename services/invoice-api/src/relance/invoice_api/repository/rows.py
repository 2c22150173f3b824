"""What the repository modules share: the row type they return and the cursor of lists."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    Row,
    literal,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.paging import decode_uuid_cursor

AnyRow = Row[*tuple[Any, ...]]


def after_cursor(query: Any, table: Any, cursor: str | None) -> Any:
    if cursor is None:
        return query
    created_at, row_id = decode_uuid_cursor(cursor)
    return query.where(tuple_(table.c.created_at, table.c.id) < tuple_(created_at, row_id))


async def external_id_taken(
    session: AsyncSession, table: Any, org_id: UUID, external_id: str, except_id: UUID | None = None
) -> bool:
    query = select(literal(1)).where(
        table.c.organization_id == org_id, table.c.external_id == external_id
    )
    if except_id is not None:
        query = query.where(table.c.id != except_id)
    return (await session.execute(query)).first() is not None
