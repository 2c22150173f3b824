"""SQL of customers, each statement filtered by organization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow, after_cursor
from relance.invoice_api.tables import (
    customers,
)


async def insert_customer(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(customers).values(**values))


async def get_customer(session: AsyncSession, org_id: UUID, customer_id: UUID) -> AnyRow | None:
    result = await session.execute(
        select(customers).where(
            customers.c.organization_id == org_id, customers.c.id == customer_id
        )
    )
    return result.first()


async def update_customer(
    session: AsyncSession, org_id: UUID, customer_id: UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        update(customers)
        .where(customers.c.organization_id == org_id, customers.c.id == customer_id)
        .values(**values)
    )


async def list_customers(
    session: AsyncSession, org_id: UUID, limit: int, cursor: str | None
) -> Sequence[AnyRow]:
    query = select(customers).where(customers.c.organization_id == org_id)
    query = after_cursor(query, customers, cursor)
    query = query.order_by(customers.c.created_at.desc(), customers.c.id.desc()).limit(limit + 1)
    return (await session.execute(query)).all()
