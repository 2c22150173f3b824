"""SQL of the reports."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from sqlalchemy import (
    case,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.tables import (
    invoices,
)

AGING_BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")


async def aging(
    session: AsyncSession, org_id: UUID, today: date, currency: str
) -> dict[str, tuple[int, int, Decimal]]:
    """Open sent invoices by how late they are: bucket → (invoices, customers, balance)."""
    late = literal(today) - invoices.c.due_date
    bucket = case(
        (late <= 0, "not_due"),
        (late <= 30, "1_30"),
        (late <= 60, "31_60"),
        (late <= 90, "61_90"),
        else_="over_90",
    ).label("bucket")
    query = (
        select(
            bucket,
            func.count(),
            func.count(func.distinct(invoices.c.customer_id)),
            func.coalesce(func.sum(invoices.c.total - invoices.c.paid), 0),
        )
        .where(
            invoices.c.organization_id == org_id,
            invoices.c.sent_at.is_not(None),
            invoices.c.paid < invoices.c.total,
            invoices.c.currency == currency,
        )
        .group_by(bucket)
    )
    found = {
        row[0]: (int(row[1]), int(row[2]), Decimal(row[3])) for row in await session.execute(query)
    }
    return {name: found.get(name, (0, 0, Decimal(0))) for name in AGING_BUCKETS}
