"""SQL of payments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.tables import (
    invoices,
    payments,
)


async def insert_payment(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(payments).values(**values))


async def match_already_applied(session: AsyncSession, match_id: UUID) -> bool:
    result = await session.execute(select(literal(1)).where(payments.c.match_id == match_id))
    return result.first() is not None


async def add_to_paid(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, amount: Decimal, now: datetime
) -> None:
    await session.execute(
        update(invoices)
        .where(invoices.c.organization_id == org_id, invoices.c.id == invoice_id)
        .values(paid=invoices.c.paid + amount, updated_at=now)
    )
