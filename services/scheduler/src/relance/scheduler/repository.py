"""Every SQL statement of the scheduler, and only here. Each one filters by invoice or by
organization: a step is never read or changed through another tenant's event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.outbox import CHANNEL as OUTBOX_CHANNEL
from relance.scheduler.due_events import EVENT_TYPE, TOPIC, DueRows
from relance.scheduler.tables import plans, steps, suggestions

AnyRow = Row[Any]
STEPS_CHANNEL = "relance_steps"  # NOTIFY'd when a step may now fire sooner than awaited


# Plans


async def plan_of(session: AsyncSession, invoice_id: UUID, *, lock: bool = False) -> AnyRow | None:
    """The invoice's plan; ``lock`` serializes the changes of one invoice."""
    query = select(plans).where(plans.c.invoice_id == invoice_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def insert_plan(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a new plan; False when the invoice already has one (a repeated ``invoice.sent``)."""
    result = await session.execute(
        upsert(plans).values(**values).on_conflict_do_nothing().returning(plans.c.invoice_id)
    )
    return result.first() is not None


async def update_plan(session: AsyncSession, invoice_id: UUID, **values: Any) -> None:
    await session.execute(
        update(plans)
        .where(plans.c.invoice_id == invoice_id)
        .values(**values, updated_at=func.now())
    )


async def extend_hold(session: AsyncSession, invoice_id: UUID, until: datetime) -> None:
    """Hold until ``until``, or later if an earlier announcement holds longer."""
    await update_plan(
        session,
        invoice_id,
        hold_until=func.greatest(func.coalesce(plans.c.hold_until, until), until),
    )


# Steps


async def insert_steps(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(steps), list(rows))


async def steps_of(session: AsyncSession, invoice_id: UUID) -> list[AnyRow]:
    result = await session.execute(
        select(steps).where(steps.c.invoice_id == invoice_id).order_by(steps.c.position)
    )
    return list(result.all())


def _waiting(invoice_id: UUID) -> Any:
    """Steps of the invoice still to go: planned and not yet handed to the notifier."""
    return (
        (steps.c.invoice_id == invoice_id)
        & (steps.c.status == "planned")
        & steps.c.fired_at.is_(None)
    )


async def cancel_waiting_steps(session: AsyncSession, invoice_id: UUID, reason: str) -> int:
    result = await session.execute(
        update(steps)
        .where(_waiting(invoice_id))
        .values(status="cancelled", reason=reason, fire_at=None)
        .returning(steps.c.id)
    )
    return len(result.all())


async def delete_waiting_steps(session: AsyncSession, invoice_id: UUID) -> None:
    await session.execute(steps.delete().where(_waiting(invoice_id)))


async def renumber_steps(session: AsyncSession, invoice_id: UUID) -> None:
    """Positions follow the dates again (after a new due date replaced waiting steps)."""
    await session.execute(
        text(
            """
            UPDATE steps SET position = ordered.position
            FROM (
                SELECT id, row_number() OVER (ORDER BY scheduled_for, position) - 1 AS position
                FROM steps WHERE invoice_id = :invoice_id
            ) AS ordered
            WHERE steps.id = ordered.id AND steps.position <> ordered.position
            """
        ),
        {"invoice_id": invoice_id},
    )


async def reschedule(session: AsyncSession, invoice_id: UUID) -> None:
    """Set when each waiting step may fire, from the plan's holds (``plan.step_outlooks``
    says the same in Python; a test holds the two together).

    Held by a pending suggestion: not at all until a person decides. Held by a scheduled
    payment: not before the hold ends, where all the steps it held fall due together and
    the firing's catch-up sends only the latest. Otherwise: at its own time.
    """
    await session.execute(
        text(
            """
            UPDATE steps SET fire_at = CASE
                WHEN EXISTS (
                    SELECT 1 FROM suggestions
                    WHERE suggestions.invoice_id = :invoice_id AND suggestions.pending
                      AND suggestions.organization_id = plans.organization_id
                ) THEN NULL
                ELSE greatest(steps.scheduled_for, plans.hold_until)
            END
            FROM plans
            WHERE plans.invoice_id = :invoice_id AND plans.stopped IS NULL
              AND steps.invoice_id = :invoice_id
              AND steps.status = 'planned' AND steps.fired_at IS NULL
            """
        ),
        {"invoice_id": invoice_id},
    )
    await session.execute(text(f"NOTIFY {STEPS_CHANNEL}"))


async def record_outcome(
    session: AsyncSession,
    organization_id: UUID,
    step_id: UUID,
    status: str,
    at: datetime,
    reason: str | None,
) -> UUID | None:
    """The notifier's word on a step; the step's invoice, or None if it is not ours."""
    result = await session.execute(
        update(steps)
        .where(steps.c.id == step_id, steps.c.organization_id == organization_id)
        .values(
            status=status,
            sent_at=at if status == "sent" else steps.c.sent_at,
            reason=reason,
            fire_at=None,
        )
        .returning(steps.c.invoice_id)
    )
    return result.scalar()


# Suggestions


async def save_suggestion(
    session: AsyncSession, match_id: UUID, organization_id: UUID, invoice_id: UUID, pending: bool
) -> None:
    """Record a suggestion or a person's decision on it. A decision is final: a late
    ``payment.suggested`` for a match already decided does not hold again."""
    statement = upsert(suggestions).values(
        match_id=match_id, organization_id=organization_id, invoice_id=invoice_id, pending=pending
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[suggestions.c.match_id],
            set_={"pending": statement.excluded.pending},
            where=suggestions.c.pending & (suggestions.c.organization_id == organization_id),
        )
    )


async def awaits_decision(session: AsyncSession, organization_id: UUID, invoice_id: UUID) -> bool:
    """Whether a payment suggestion of the plan's organization waits for a person."""
    result = await session.execute(
        select(suggestions.c.match_id)
        .where(
            suggestions.c.invoice_id == invoice_id,
            suggestions.c.organization_id == organization_id,
            suggestions.c.pending,
        )
        .limit(1)
    )
    return result.first() is not None


# Firing

# The due steps come from the partial index steps_to_fire in fire_at order, and the scan
# stops at the LIMIT: the steps planned later are never read. `decided` is MATERIALIZED so
# that the catch-up EXISTS runs once per step (inlined, it ran once per use); `due` reads
# invoice_id and position from the locked rows itself, so no second lookup of each step.
# Above about 5,000 steps PostgreSQL plans this as a full scan of steps instead: hence the
# cap on FIRING_BATCH_SIZE (BENCHMARKS.md, "What limits it").
CLAIM_DUE_STEPS = """
    WITH due AS (
        SELECT id, invoice_id, position, fire_at FROM steps
        WHERE fire_at <= $1
        ORDER BY fire_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ),
    decided AS MATERIALIZED (
        SELECT due.id, due.fire_at, EXISTS (
            SELECT 1 FROM steps AS later
            WHERE later.invoice_id = due.invoice_id AND later.position > due.position
              AND (later.fire_at <= $1 OR later.fired_at IS NOT NULL
                   OR later.status IN ('sent', 'failed'))
        ) AS superseded
        FROM due
    )
    UPDATE steps SET
        fire_at = NULL,
        fired_at = CASE WHEN decided.superseded THEN NULL ELSE $1 END,
        status = CASE WHEN decided.superseded THEN 'skipped' ELSE steps.status END,
        reason = CASE WHEN decided.superseded THEN $3 ELSE steps.reason END
    FROM decided
    WHERE steps.id = decided.id
    RETURNING steps.id, steps.organization_id, steps.invoice_id, steps.kind, steps.severity,
              steps.scheduled_for, steps.traceparent, decided.fire_at AS due_at,
              decided.superseded
"""
CATCH_UP_REASON = "a later step was due at the same time: only the latest is sent"

# one statement writes a batch of reminder.due rows (one array per column) and wakes the relay
INSERT_DUE_EVENTS = """
    WITH written AS (
        INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
        SELECT due.event_id, $1, $2, due.key, due.value, due.headers::jsonb
        FROM unnest($3::uuid[], $4::bytea[], $5::bytea[], $6::text[])
             AS due(event_id, key, value, headers)
    )
    SELECT pg_notify($7, '')
"""


async def driver_in_transaction(session: AsyncSession) -> asyncpg.Connection:
    """asyncpg's own connection under ``session``, inside the session's transaction.

    For the firing loop's statements, where SQLAlchemy's work per row costs more than the
    database's. SQLAlchemy begins its transaction on the server only at its first statement,
    so one is run first if none has been: otherwise each asyncpg statement would commit on
    its own.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver


async def claim_due_steps(session: AsyncSession, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Take up to ``limit`` due steps that no other replica holds, in one statement.

    A due step with a later step of its invoice also due (or already gone) is ``skipped``
    instead (the catch-up rule: a customer never gets a burst of reminders). The others are
    marked fired; the caller writes their ``reminder.due`` in the same transaction.
    """
    connection = await driver_in_transaction(session)
    rows: list[asyncpg.Record] = await connection.fetch(
        CLAIM_DUE_STEPS, now, limit, CATCH_UP_REASON
    )
    return rows


async def write_due_events(session: AsyncSession, rows: DueRows) -> None:
    """Write the ``reminder.due`` rows to the outbox in the session's transaction, and
    notify the relay (at commit)."""
    if not len(rows):
        return
    connection = await driver_in_transaction(session)
    await connection.execute(
        INSERT_DUE_EVENTS,
        EVENT_TYPE,
        TOPIC,
        rows.event_ids,
        rows.keys,
        rows.values,
        rows.headers,
        OUTBOX_CHANNEL,
    )


async def next_fire_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(steps.c.fire_at)))
