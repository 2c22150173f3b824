"""Every SQL statement of the scheduler, and only here. Each one filters by invoice or by
organization: a step is never read or changed through another tenant's event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

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
    """Set when each waiting step may fire, from the plan's holds.

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


# Firing

CLAIM_DUE_STEPS = text(
    """
    WITH due AS (
        SELECT id, fire_at FROM steps
        WHERE fire_at <= :now
        ORDER BY fire_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ),
    decided AS MATERIALIZED (
        SELECT due.id, due.fire_at, EXISTS (
            SELECT 1 FROM steps AS later
            WHERE later.invoice_id = step.invoice_id AND later.position > step.position
              AND (later.fire_at <= :now OR later.fired_at IS NOT NULL
                   OR later.status IN ('sent', 'failed'))
        ) AS superseded
        FROM due JOIN steps AS step ON step.id = due.id
    )
    UPDATE steps SET
        fire_at = NULL,
        fired_at = CASE WHEN decided.superseded THEN NULL ELSE :now END,
        status = CASE WHEN decided.superseded THEN 'skipped' ELSE steps.status END,
        reason = CASE WHEN decided.superseded THEN :skip_reason ELSE steps.reason END
    FROM decided
    WHERE steps.id = decided.id
    RETURNING steps.id, steps.organization_id, steps.invoice_id, steps.kind, steps.severity,
              steps.scheduled_for, steps.traceparent, decided.fire_at AS due_at,
              decided.superseded
    """
)
CATCH_UP_REASON = "a later step was due at the same time: only the latest is sent"


async def claim_due_steps(session: AsyncSession, now: datetime, limit: int) -> list[AnyRow]:
    """Take up to ``limit`` due steps that no other replica holds, in one statement.

    A due step with a later step of its invoice also due (or already gone) is ``skipped``
    instead (the catch-up rule: a customer never gets a burst of reminders). The others are
    marked fired; the caller writes their ``reminder.due`` in the same transaction.
    """
    result = await session.execute(
        CLAIM_DUE_STEPS, {"now": now, "limit": limit, "skip_reason": CATCH_UP_REASON}
    )
    return list(result.all())


async def next_fire_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(steps.c.fire_at)))
