"""SQL of invoices, each statement filtered by organization; the status rules in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow, after_cursor
from relance.invoice_api.status import InvoiceStatus
from relance.invoice_api.tables import (
    customers,
    invoices,
)


def status_expression(today: date) -> ColumnElement[str]:
    """The rules of ``status.invoice_status``, in SQL, for one organization's today."""
    return case(
        (invoices.c.sent_at.is_(None), InvoiceStatus.DRAFT.value),
        (invoices.c.paid >= invoices.c.total, InvoiceStatus.PAID.value),
        (invoices.c.in_collection_at.is_not(None), InvoiceStatus.IN_COLLECTION.value),
        (
            and_(invoices.c.scheduled_until.is_not(None), invoices.c.scheduled_until >= today),
            InvoiceStatus.SCHEDULED.value,
        ),
        (invoices.c.paid > 0, InvoiceStatus.PARTIALLY_PAID.value),
        (invoices.c.due_date < today, InvoiceStatus.TO_COLLECT.value),
        else_=InvoiceStatus.NOT_DUE.value,
    )


def status_condition(status: InvoiceStatus, today: date) -> ColumnElement[bool]:
    """WHERE clause selecting one status, written so that indexes can serve it."""
    sent = invoices.c.sent_at.is_not(None)
    unpaid = invoices.c.paid < invoices.c.total
    not_collected = invoices.c.in_collection_at.is_(None)
    not_scheduled = or_(invoices.c.scheduled_until.is_(None), invoices.c.scheduled_until < today)
    match status:
        case InvoiceStatus.DRAFT:
            return invoices.c.sent_at.is_(None)
        case InvoiceStatus.PAID:
            return and_(sent, invoices.c.paid >= invoices.c.total)
        case InvoiceStatus.IN_COLLECTION:
            return and_(sent, unpaid, invoices.c.in_collection_at.is_not(None))
        case InvoiceStatus.SCHEDULED:
            return and_(sent, unpaid, not_collected, invoices.c.scheduled_until >= today)
        case InvoiceStatus.PARTIALLY_PAID:
            return and_(sent, unpaid, not_collected, not_scheduled, invoices.c.paid > 0)
        case InvoiceStatus.TO_COLLECT:
            return and_(
                sent, unpaid, not_collected, not_scheduled, invoices.c.paid == 0,
                invoices.c.due_date < today,
            )  # fmt: skip
        case InvoiceStatus.NOT_DUE:
            return and_(
                sent, unpaid, not_collected, not_scheduled, invoices.c.paid == 0,
                invoices.c.due_date >= today,
            )  # fmt: skip


def _invoice_select(today: date) -> Any:
    return select(
        invoices,
        customers.c.name.label("customer_name"),
        status_expression(today).label("status"),
    ).join(customers, customers.c.id == invoices.c.customer_id)


async def get_invoice(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, today: date, *, lock: bool = False
) -> AnyRow | None:
    query = _invoice_select(today).where(
        invoices.c.organization_id == org_id, invoices.c.id == invoice_id
    )
    if lock:
        query = query.with_for_update(of=invoices)
    return (await session.execute(query)).first()


async def update_invoice(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        update(invoices)
        .where(invoices.c.organization_id == org_id, invoices.c.id == invoice_id)
        .values(**values)
    )


async def invoice_exists(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> bool:
    result = await session.execute(
        select(literal(1)).where(invoices.c.organization_id == org_id, invoices.c.id == invoice_id)
    )
    return result.first() is not None


async def open_sent_invoice_ids(
    session: AsyncSession, org_id: UUID, customer_id: UUID
) -> list[UUID]:
    result = await session.execute(
        select(invoices.c.id).where(
            invoices.c.organization_id == org_id,
            invoices.c.customer_id == customer_id,
            invoices.c.sent_at.is_not(None),
            invoices.c.paid < invoices.c.total,
        )
    )
    return list(result.scalars())


async def invoice_ids_named(
    session: AsyncSession, org_id: UUID, number: str | None, external_id: str | None
) -> dict[str, UUID]:
    """The ids of the organization's invoices with this number and with this external id,
    keyed ``number`` and ``external_id`` (absent when there is none)."""
    conditions = []
    if number is not None:
        conditions.append(invoices.c.number == number)
    if external_id is not None:
        conditions.append(invoices.c.external_id == external_id)
    if not conditions:
        return {}
    result = await session.execute(
        select(invoices.c.id, invoices.c.number, invoices.c.external_id).where(
            invoices.c.organization_id == org_id, or_(*conditions)
        )
    )
    found: dict[str, UUID] = {}
    for row in result:
        if number is not None and row.number == number:
            found["number"] = row.id
        if external_id is not None and row.external_id == external_id:
            found["external_id"] = row.id
    return found


@dataclass(frozen=True)
class InvoiceFilters:
    status: InvoiceStatus | None = None
    customer_id: UUID | None = None
    text: str | None = None
    payment_detected: bool | None = None


async def list_invoices(
    session: AsyncSession,
    org_id: UUID,
    today: date,
    filters: InvoiceFilters,
    limit: int,
    cursor: str | None,
) -> Sequence[AnyRow]:
    query = _invoice_select(today).where(invoices.c.organization_id == org_id)
    if filters.status is not None:
        query = query.where(status_condition(filters.status, today))
    if filters.customer_id is not None:
        query = query.where(invoices.c.customer_id == filters.customer_id)
    if filters.payment_detected is not None:
        query = query.where(invoices.c.payment_detected.is_(filters.payment_detected))
    if filters.text:
        pattern = (
            "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            or_(invoices.c.number.ilike(pattern), invoices.c.invoice_text.ilike(pattern))
        )
    query = after_cursor(query, invoices, cursor)
    query = query.order_by(invoices.c.created_at.desc(), invoices.c.id.desc()).limit(limit + 1)
    return (await session.execute(query)).all()
