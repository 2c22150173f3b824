"""Every SQL statement of the payment-matcher, and only here. Each one filters by organization."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.payment_matcher.tables import (
    bank_transactions,
    match_allocations,
    matches,
    open_invoices,
    payers,
    payments_in_flight,
    rejected_pairs,
)

AnyRow = Row[Any]


# The copy of invoices and customers, from invoice events


async def save_open_invoice(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert or replace the invoice's copy (``values`` has every column); whether it is new
    to this service."""
    statement = upsert(open_invoices).values(**values)
    result = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[open_invoices.c.invoice_id],
            set_={k: statement.excluded[k] for k in values if k != "invoice_id"},
            where=open_invoices.c.organization_id == values["organization_id"],
        ).returning(text("xmax = 0"))  # PostgreSQL's way to tell an insert from an update
    )
    return bool(result.scalar())


async def set_balance(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, balance: Decimal
) -> None:
    await session.execute(
        update(open_invoices)
        .where(open_invoices.c.organization_id == org_id, open_invoices.c.invoice_id == invoice_id)
        .values(balance=balance)
    )


async def record_payments(
    session: AsyncSession, org_id: UUID, payments: Iterable[tuple[UUID, UUID, str, Decimal]]
) -> None:
    """``(match_id, invoice_id, bank_reference, amount)``: payments this service recorded.
    They are taken off the invoices' balances at once, and kept until invoice-api
    acknowledges each one (:func:`acknowledge_payment`): the balances it reports until then
    do not include them."""
    rows = list(payments)
    if not rows:
        return
    await session.execute(
        upsert(payments_in_flight)
        .values(
            [
                {
                    "match_id": m,
                    "organization_id": org_id,
                    "invoice_id": i,
                    "bank_reference": r,
                    "amount": a,
                }
                for m, i, r, a in rows
            ]
        )
        .on_conflict_do_nothing()
    )
    await session.execute(
        text(
            """
            UPDATE open_invoices AS o SET balance = greatest(o.balance - p.amount, 0)
            FROM (
                SELECT id, sum(amount) AS amount
                FROM unnest(CAST(:ids AS uuid[]), CAST(:amounts AS numeric[])) AS u (id, amount)
                GROUP BY id
            ) AS p
            WHERE o.organization_id = :org AND o.invoice_id = p.id
            """
        ),
        {"org": org_id, "ids": [r[1] for r in rows], "amounts": [r[3] for r in rows]},
    )


async def acknowledge_payment(
    session: AsyncSession,
    org_id: UUID,
    invoice_id: UUID,
    *,
    match_id: UUID | None = None,
    bank_reference: str | None = None,
) -> None:
    """invoice-api recorded this payment, named by its match (or, in an event without one,
    by the bank transaction, which pays an invoice once): the balances it reports include it
    from now on."""
    if match_id is not None:
        which = payments_in_flight.c.match_id == match_id
    elif bank_reference is not None:
        which = payments_in_flight.c.bank_reference == bank_reference
    else:
        return
    await session.execute(
        delete(payments_in_flight).where(
            payments_in_flight.c.organization_id == org_id,
            payments_in_flight.c.invoice_id == invoice_id,
            which,
        )
    )


async def forget_payments_in_flight(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> None:
    await session.execute(
        delete(payments_in_flight).where(
            payments_in_flight.c.organization_id == org_id,
            payments_in_flight.c.invoice_id == invoice_id,
        )
    )


async def payments_in_flight_of(
    session: AsyncSession, org_id: UUID, invoice_id: UUID
) -> list[Decimal]:
    """The amounts of the invoice's payments that invoice-api has not acknowledged yet."""
    result = await session.execute(
        select(payments_in_flight.c.amount).where(
            payments_in_flight.c.organization_id == org_id,
            payments_in_flight.c.invoice_id == invoice_id,
        )
    )
    return list(result.scalars())


async def save_payer(
    session: AsyncSession, org_id: UUID, customer_id: UUID, name: str, ibans: Sequence[str]
) -> None:
    """The customer's name and IBANs as invoice-api has them; what was learned stays."""
    statement = upsert(payers).values(
        customer_id=customer_id, organization_id=org_id, name=name, ibans=list(ibans)
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[payers.c.customer_id],
            set_={"name": statement.excluded.name, "ibans": statement.excluded.ibans},
            where=payers.c.organization_id == org_id,
        )
    )


async def learn_payer(
    session: AsyncSession, org_id: UUID, customer_id: UUID, iban: str | None, name: str | None
) -> None:
    changes: dict[str, Any] = {}
    if iban:
        changes["learned_ibans"] = func.array_append(
            func.array_remove(payers.c.learned_ibans, iban), iban
        )
    if name:
        changes["learned_names"] = func.array_append(
            func.array_remove(payers.c.learned_names, name), name
        )
    if changes:
        await session.execute(
            update(payers)
            .where(payers.c.organization_id == org_id, payers.c.customer_id == customer_id)
            .values(**changes)
        )


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    """asyncpg's own connection under the session, in its transaction: for the bulk reads
    and writes of an import, where SQLAlchemy's work per row costs more than the database's."""
    raw = await (await session.connection()).get_raw_connection()
    connection: asyncpg.Connection = raw.driver_connection
    return connection


async def open_invoices_of(session: AsyncSession, org_id: UUID) -> list[asyncpg.Record]:
    connection = await _driver(session)
    rows: list[asyncpg.Record] = await connection.fetch(
        "SELECT invoice_id, customer_id, number, payment_reference, currency, balance,"
        " due_date, sent_on FROM open_invoices WHERE organization_id = $1 AND balance > 0",
        org_id,
    )
    return rows


async def payers_of(session: AsyncSession, org_id: UUID) -> list[asyncpg.Record]:
    connection = await _driver(session)
    rows: list[asyncpg.Record] = await connection.fetch(
        "SELECT customer_id, name, ibans, learned_names, learned_ibans FROM payers"
        " WHERE organization_id = $1",
        org_id,
    )
    return rows


# Imports


async def lock_organization(session: AsyncSession, org_id: UUID) -> None:
    """One import or decision at a time per organization, until the transaction ends: each
    one matches against the balances the previous one left."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:org, 0))"), {"org": str(org_id)}
    )


async def known_references(
    session: AsyncSession, org_id: UUID, references: Sequence[str]
) -> set[str]:
    result = await session.execute(
        select(bank_transactions.c.bank_reference).where(
            bank_transactions.c.organization_id == org_id,
            bank_transactions.c.bank_reference
            == func.any(text("CAST(:refs AS text[])").bindparams(refs=list(references))),
        )
    )
    return set(result.scalars())


async def copy_rows(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows with COPY, in the session's transaction (every row has the same keys,
    columns of ``table``)."""
    if rows:
        columns = list(rows[0])
        connection = await _driver(session)
        await connection.copy_records_to_table(
            table.name, records=[tuple(row[c] for c in columns) for row in rows], columns=columns
        )


async def waiting_credits(
    session: AsyncSession, org_id: UUID, keys: Sequence[str]
) -> list[asyncpg.Record]:
    """The organization's unmatched credits that may name an invoice with these lookup
    keys, oldest first."""
    connection = await _driver(session)
    rows: list[asyncpg.Record] = await connection.fetch(
        "SELECT bank_reference, booked_on, amount, currency, counterparty_name,"
        " counterparty_iban, remittance_info, creditor_reference FROM bank_transactions"
        " WHERE organization_id = $1 AND state = 'unmatched' AND lookup_keys IS NOT NULL"
        " AND lookup_keys && $2::text[] ORDER BY booked_on, bank_reference",
        org_id,
        list(keys),
    )
    return rows


async def set_transaction_states(
    session: AsyncSession, org_id: UUID, states: Sequence[tuple[str, str]]
) -> None:
    """``(bank_reference, state)`` pairs: those transactions found their invoices at last."""
    if states:
        connection = await _driver(session)
        await connection.executemany(
            "UPDATE bank_transactions SET state = $3, lookup_keys = NULL"
            " WHERE organization_id = $1 AND bank_reference = $2",
            [(org_id, reference, state) for reference, state in states],
        )


async def rejected_invoices(
    session: AsyncSession, org_id: UUID, bank_references: Sequence[str]
) -> dict[str, set[UUID]]:
    """By bank reference, the invoices a person rejected for these transactions."""
    found: dict[str, set[UUID]] = {}
    if bank_references:
        result = await session.execute(
            select(rejected_pairs.c.bank_reference, rejected_pairs.c.invoice_id).where(
                rejected_pairs.c.organization_id == org_id,
                rejected_pairs.c.bank_reference.in_(bank_references),
            )
        )
        for reference, invoice_id in result:
            found.setdefault(reference, set()).add(invoice_id)
    return found


async def add_rejected_pairs(
    session: AsyncSession, org_id: UUID, bank_reference: str, invoice_ids: Sequence[UUID]
) -> None:
    if invoice_ids:
        await session.execute(
            upsert(rejected_pairs)
            .values(
                [
                    {"organization_id": org_id, "bank_reference": bank_reference, "invoice_id": i}
                    for i in invoice_ids
                ]
            )
            .on_conflict_do_nothing()
        )


# Reading transactions and matches


async def get_transaction(
    session: AsyncSession, org_id: UUID, bank_reference: str, *, lock: bool = False
) -> AnyRow | None:
    query = select(bank_transactions).where(
        bank_transactions.c.organization_id == org_id,
        bank_transactions.c.bank_reference == bank_reference,
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def update_transaction(
    session: AsyncSession, org_id: UUID, bank_reference: str, values: dict[str, Any]
) -> None:
    await session.execute(
        update(bank_transactions)
        .where(
            bank_transactions.c.organization_id == org_id,
            bank_transactions.c.bank_reference == bank_reference,
        )
        .values(**values)
    )


async def list_transactions(
    session: AsyncSession,
    org_id: UUID,
    state: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> Sequence[AnyRow]:
    query = select(bank_transactions).where(bank_transactions.c.organization_id == org_id)
    if state is not None:
        query = query.where(bank_transactions.c.state == state)
    if after is not None:
        at, ref = after
        query = query.where(
            or_(
                bank_transactions.c.imported_at < at,
                and_(
                    bank_transactions.c.imported_at == at, bank_transactions.c.bank_reference < ref
                ),
            )
        )
    query = query.order_by(
        bank_transactions.c.imported_at.desc(), bank_transactions.c.bank_reference.desc()
    ).limit(limit)
    return (await session.execute(query)).all()


async def matches_of_transactions(
    session: AsyncSession, org_id: UUID, bank_references: Sequence[str], states: Sequence[str]
) -> Sequence[AnyRow]:
    """The matches in ``states`` of these transactions, best first within each."""
    if not bank_references:
        return []
    result = await session.execute(
        select(matches)
        .where(
            matches.c.organization_id == org_id,
            matches.c.bank_reference.in_(bank_references),
            matches.c.state.in_(states),
        )
        .order_by(matches.c.confidence.desc(), matches.c.id)
    )
    return result.all()


async def get_match(
    session: AsyncSession, org_id: UUID, match_id: UUID, *, lock: bool = False
) -> AnyRow | None:
    query = select(matches).where(matches.c.organization_id == org_id, matches.c.id == match_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def list_matches(
    session: AsyncSession,
    org_id: UUID,
    state: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
    *,
    match_id: UUID | None = None,
) -> Sequence[AnyRow]:
    """Matches with their transaction's amount, date and text; one if ``match_id``."""
    query = (
        select(
            matches,
            bank_transactions.c.amount,
            bank_transactions.c.currency,
            bank_transactions.c.booked_on,
            bank_transactions.c.counterparty_name,
            bank_transactions.c.remittance_info,
        )
        .join(
            bank_transactions,
            and_(
                bank_transactions.c.organization_id == matches.c.organization_id,
                bank_transactions.c.bank_reference == matches.c.bank_reference,
            ),
        )
        .where(matches.c.organization_id == org_id)
    )
    if match_id is not None:
        query = query.where(matches.c.id == match_id)
    if state is not None:
        query = query.where(matches.c.state == state)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                matches.c.created_at < at,
                and_(matches.c.created_at == at, matches.c.id < last_id),
            )
        )
    query = query.order_by(matches.c.created_at.desc(), matches.c.id.desc()).limit(limit)
    return (await session.execute(query)).all()


async def allocations_of(
    session: AsyncSession, match_ids: Sequence[UUID]
) -> dict[UUID, list[AnyRow]]:
    """The allocations of matches already read with their organization's filter."""
    found: dict[UUID, list[AnyRow]] = {match_id: [] for match_id in match_ids}
    if match_ids:
        result = await session.execute(
            select(match_allocations)
            .where(match_allocations.c.match_id.in_(match_ids))
            .order_by(match_allocations.c.match_id, match_allocations.c.invoice_id)
        )
        for row in result:
            found[row.match_id].append(row)
    return found


async def decide_matches(
    session: AsyncSession, org_id: UUID, match_ids: Sequence[UUID], state: str, at: datetime
) -> None:
    if match_ids:
        await session.execute(
            update(matches)
            .where(matches.c.organization_id == org_id, matches.c.id.in_(match_ids))
            .values(state=state, decided_at=at)
        )
