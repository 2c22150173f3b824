"""Every SQL statement on the notifier's copy of invoices, which the emails word themselves
from and the partner messages name invoices by. The deliveries' statements are in
``email/repository.py`` and ``webhooks/repository.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.notifier.tables import invoices

AnyRow = Row[Any]


async def save_invoice(session: AsyncSession, values: dict[str, Any]) -> None:
    """Keep the invoice as the event describes it, unless a newer event already did."""
    statement = insert(invoices).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[invoices.c.invoice_id],
            set_={n: statement.excluded[n] for n in values if n != "invoice_id"},
            where=(invoices.c.as_of <= statement.excluded.as_of)
            & (invoices.c.organization_id == statement.excluded.organization_id),
        )
    )


async def set_amounts(
    session: AsyncSession,
    organization_id: UUID,
    invoice_id: UUID,
    *,
    total: Any,
    balance: Any,
    as_of: datetime,
) -> None:
    await session.execute(
        update(invoices)
        .where(
            invoices.c.invoice_id == invoice_id,
            invoices.c.organization_id == organization_id,
            invoices.c.as_of <= as_of,
        )
        .values(total=total, balance=balance, as_of=as_of)
    )


async def invoices_of(session: AsyncSession, invoice_ids: list[UUID]) -> dict[UUID, AnyRow]:
    """The copies of these invoices, by id (the caller checks each one's organization)."""
    if not invoice_ids:
        return {}
    result = await session.execute(select(invoices).where(invoices.c.invoice_id.in_(invoice_ids)))
    return {row.invoice_id: row for row in result}


async def invoice_names(session: AsyncSession, invoice_ids: list[UUID]) -> dict[UUID, Any]:
    """The number and the partner's external id of these invoices, by id, with their
    organization (the caller checks it): what partner messages name an invoice by."""
    if not invoice_ids:
        return {}
    result = await session.execute(
        select(
            invoices.c.invoice_id,
            invoices.c.organization_id,
            invoices.c.number,
            invoices.c.external_id,
        ).where(invoices.c.invoice_id.in_(invoice_ids))
    )
    return {row.invoice_id: row for row in result}
