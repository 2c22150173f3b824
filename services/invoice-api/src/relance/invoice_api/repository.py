"""Every SQL statement of invoice-api, and only here. Each one filters by organization."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events.types import HoldReason
from relance.common.outbox import CHANNEL
from relance.common.paging import decode_uuid_cursor
from relance.invoice_api.status import InvoiceStatus
from relance.invoice_api.tables import (
    activity,
    customers,
    invoices,
    organizations,
    partner_events,
    payments,
    reminder_steps,
    step_outcomes,
)

AnyRow = Row[*tuple[Any, ...]]


# Organizations


async def insert_organization(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(organizations).values(**values))


async def organization_by_key(session: AsyncSession, key_sha256: str) -> AnyRow | None:
    result = await session.execute(
        select(organizations).where(organizations.c.api_key_sha256 == key_sha256)
    )
    return result.first()


async def partner_secret(session: AsyncSession, org_id: UUID) -> str | None:
    secret: str | None = await session.scalar(
        select(organizations.c.partner_secret).where(organizations.c.id == org_id)
    )
    return secret


async def set_partner_secret(session: AsyncSession, org_id: UUID, secret: str) -> None:
    await session.execute(
        update(organizations).where(organizations.c.id == org_id).values(partner_secret=secret)
    )


# Partner events: each webhook-id is applied once per organization


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


# Customers


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


async def external_id_taken(
    session: AsyncSession, table: Any, org_id: UUID, external_id: str, except_id: UUID | None = None
) -> bool:
    query = select(literal(1)).where(
        table.c.organization_id == org_id, table.c.external_id == external_id
    )
    if except_id is not None:
        query = query.where(table.c.id != except_id)
    return (await session.execute(query)).first() is not None


async def list_customers(
    session: AsyncSession, org_id: UUID, limit: int, cursor: str | None
) -> Sequence[AnyRow]:
    query = select(customers).where(customers.c.organization_id == org_id)
    query = _after_cursor(query, customers, cursor)
    query = query.order_by(customers.c.created_at.desc(), customers.c.id.desc()).limit(limit + 1)
    return (await session.execute(query)).all()


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


# Invoices


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


# Creating an invoice, on the driver's connection (operations.create_invoice)

# One statement, hence one round trip and one transaction: the checks (the organization has
# the customer; the number and the external id are free in it) and, when they pass, the
# invoice (its updated_at is its created_at), its activity and, for an invoice sent
# elsewhere, its second activity row, its event in the outbox and the relay's wake-up at
# commit, as add_events does. The event's customer is the row the statement reads. Data-
# modifying CTEs run once and to completion whether or not the query reads them; the
# activity's foreign key is checked at the end of the statement, when the invoice is there.
_CREATE_INVOICE = """
WITH customer AS (
    SELECT name, email, locale, ibans, external_id FROM customers
    WHERE organization_id = $2 AND id = $3
),
refusal AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM customer) THEN 'customer_id'
        WHEN EXISTS (SELECT FROM invoices WHERE organization_id = $2 AND number = $4)
            THEN 'number'
        WHEN $11::text IS NOT NULL
             AND EXISTS (SELECT FROM invoices WHERE organization_id = $2 AND external_id = $11)
            THEN 'external_id'
    END AS field
),
invoice AS (
    INSERT INTO invoices (id, organization_id, customer_id, number, issue_date, due_date,
                          currency, total, invoice_text, payment_reference, external_id,
                          sent_at, imported, created_at, updated_at,
                          status_announced, next_status_change_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $24, $25
    FROM refusal WHERE field IS NULL
    RETURNING id
),
activity_rows AS (
    INSERT INTO activity (organization_id, invoice_id, at, kind, detail)
    SELECT $2, invoice.id, a.at, a.kind, a.detail
    FROM invoice, (VALUES (1, $14::timestamptz, 'invoice.created', '{}'::jsonb),
                          (2, $15, 'invoice.imported', $16::jsonb)) AS a (n, at, kind, detail)
    WHERE a.n = 1 OR $12::timestamptz IS NOT NULL
    ORDER BY a.n
),
event AS (
    INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
    SELECT $17, $18, $19, $20,
           convert_to((convert_from($21, 'UTF8')::jsonb || jsonb_build_object(
               'customer', jsonb_build_object(
                   'id', $3::uuid, 'name', c.name, 'email', c.email, 'locale', c.locale,
                   'ibans', c.ibans, 'external_id', c.external_id)))::text, 'UTF8'),
           $22::jsonb
    FROM invoice, customer c
    WHERE $17::uuid IS NOT NULL
    RETURNING 1
)
SELECT refusal.field AS refused, customer.name AS customer_name,
       (SELECT pg_notify($23, '') FROM event) AS notified
FROM refusal LEFT JOIN customer ON true
"""
NEW_INVOICE_COLUMNS = (  # $1 to $14
    "id",
    "organization_id",
    "customer_id",
    "number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "invoice_text",
    "payment_reference",
    "external_id",
    "sent_at",
    "imported",
    "created_at",
)


async def create_invoice(
    connection: asyncpg.Connection,
    values: Mapping[str, Any],
    imported: tuple[datetime, dict[str, Any], Mapping[str, Any]] | None = None,
) -> asyncpg.Record:
    """Write a new invoice (``values`` has the keys of ``NEW_INVOICE_COLUMNS``, then
    ``status_announced`` and ``next_status_change_at``: see calendar_changes.py) with its
    ``invoice.created`` activity, unless a check refuses it; with ``imported`` (the time and
    detail of its ``invoice.imported`` activity, and the outbox row of its event, whose
    customer the statement fills in), those too. Returns ``refused`` (None, ``customer_id``,
    ``number`` or ``external_id``: the first check that failed) and ``customer_name``.
    Raises asyncpg's ``UniqueViolationError`` when a concurrent request took the number or
    the external id after the checks."""
    at, detail, event = imported or (None, None, None)
    row: asyncpg.Record = await connection.fetchrow(
        _CREATE_INVOICE,
        *[values[column] for column in NEW_INVOICE_COLUMNS],
        at,
        None if detail is None else json.dumps(detail),
        *(
            (None,) * 6
            if event is None
            else (
                event["event_id"],
                event["event_type"],
                event["topic"],
                event["key"],
                event["value"],
                json.dumps(event["headers"]),
            )
        ),
        CHANNEL,
        values["status_announced"],
        values["next_status_change_at"],
    )
    return row


_INVOICE_CHECKS = """
SELECT EXISTS (SELECT FROM customers c WHERE c.organization_id = $1 AND c.id = $2)
           AS customer_found,
       EXISTS (SELECT FROM invoices i WHERE i.organization_id = $1 AND i.number = $3)
           AS number_taken,
       $4::text IS NOT NULL
       AND EXISTS (SELECT FROM invoices i WHERE i.organization_id = $1 AND i.external_id = $4)
           AS external_id_taken
"""


async def invoice_refusal(
    connection: asyncpg.Connection,
    org_id: UUID,
    customer_id: UUID,
    number: str,
    external_id: str | None,
) -> str | None:
    """The checks of ``create_invoice`` alone: the first that fails, or None."""
    row = await connection.fetchrow(_INVOICE_CHECKS, org_id, customer_id, number, external_id)
    if not row["customer_found"]:
        return "customer_id"
    if row["number_taken"]:
        return "number"
    if row["external_id_taken"]:
        return "external_id"
    return None


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


# The calendar loop (calendar_changes.py): invoices whose status the calendar changes now


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
    query = _after_cursor(query, invoices, cursor)
    query = query.order_by(invoices.c.created_at.desc(), invoices.c.id.desc()).limit(limit + 1)
    return (await session.execute(query)).all()


def _after_cursor(query: Any, table: Any, cursor: str | None) -> Any:
    if cursor is None:
        return query
    created_at, row_id = decode_uuid_cursor(cursor)
    return query.where(tuple_(table.c.created_at, table.c.id) < tuple_(created_at, row_id))


async def next_steps(
    session: AsyncSession, org_id: UUID, invoice_ids: Sequence[UUID]
) -> dict[UUID, AnyRow]:
    """The step of each invoice that goes next: the first planned one that will go (has a
    time) or that waits for a person's decision on a detected payment. A step the catch-up
    rule will skip is passed over."""
    if not invoice_ids:
        return {}
    step = reminder_steps.c
    query = (
        select(
            step.invoice_id,
            step.kind,
            step.scheduled_for,
            step.held,
            step.hold_reason,
            step.goes_at,
        )
        .where(
            step.organization_id == org_id,
            step.invoice_id.in_(invoice_ids),
            step.status == "planned",
            step.goes_at.is_not(None) | (step.hold_reason == HoldReason.PAYMENT_DETECTED.value),
        )
        .order_by(step.invoice_id, step.position)
        .ext(distinct_on(step.invoice_id))
    )
    return {row.invoice_id: row for row in (await session.execute(query)).all()}


# Payments


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


# Reminder steps (read model)


async def replace_steps(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, steps: Sequence[dict[str, Any]]
) -> None:
    await session.execute(
        delete(reminder_steps).where(
            reminder_steps.c.organization_id == org_id, reminder_steps.c.invoice_id == invoice_id
        )
    )
    if steps:
        await session.execute(
            insert(reminder_steps),
            [{**step, "organization_id": org_id, "invoice_id": invoice_id} for step in steps],
        )


async def record_step_outcome(
    session: AsyncSession,
    org_id: UUID,
    step_id: UUID,
    status: str,
    at: datetime,
    reason: str | None,
) -> None:
    values = {"status": status, "at": at, "reason": reason}
    await session.execute(
        pg_insert(step_outcomes)
        .values(step_id=step_id, organization_id=org_id, **values)
        .on_conflict_do_update(index_elements=[step_outcomes.c.step_id], set_=values)
    )
    await session.execute(
        update(reminder_steps)
        .where(reminder_steps.c.organization_id == org_id, reminder_steps.c.step_id == step_id)
        .values(
            status=status,
            sent_at=at if status == "sent" else None,
            reason=reason,
            held=False,
            hold_reason=None,
        )
    )


async def step_outcomes_of(
    session: AsyncSession, org_id: UUID, step_ids: Sequence[UUID]
) -> dict[UUID, AnyRow]:
    if not step_ids:
        return {}
    query = select(step_outcomes).where(
        step_outcomes.c.organization_id == org_id, step_outcomes.c.step_id.in_(step_ids)
    )
    return {row.step_id: row for row in (await session.execute(query)).all()}


async def organization_by_id(session: AsyncSession, org_id: UUID) -> AnyRow | None:
    return (
        await session.execute(select(organizations).where(organizations.c.id == org_id))
    ).first()


async def list_steps(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> Sequence[AnyRow]:
    query = (
        select(reminder_steps)
        .where(
            reminder_steps.c.organization_id == org_id, reminder_steps.c.invoice_id == invoice_id
        )
        .order_by(reminder_steps.c.position)
    )
    return (await session.execute(query)).all()


async def invoice_exists(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> bool:
    result = await session.execute(
        select(literal(1)).where(invoices.c.organization_id == org_id, invoices.c.id == invoice_id)
    )
    return result.first() is not None


# Activity


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


# Reports

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
