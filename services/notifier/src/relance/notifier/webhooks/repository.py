"""Every SQL statement on partner webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.notifier.tables import webhook_deliveries, webhook_endpoints

AnyRow = Row[Any]

WEBHOOKS_CHANNEL = "relance_webhooks"


async def add_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(webhook_endpoints).values(**values))


async def endpoints_of(session: AsyncSession, organization_id: UUID) -> list[AnyRow]:
    result = await session.execute(
        select(webhook_endpoints)
        .where(
            webhook_endpoints.c.organization_id == organization_id,
            webhook_endpoints.c.deleted_at.is_(None),
        )
        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return list(result.all())


async def endpoint_of(
    session: AsyncSession, organization_id: UUID, endpoint_id: UUID
) -> AnyRow | None:
    result = await session.execute(
        select(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.organization_id == organization_id,
            webhook_endpoints.c.deleted_at.is_(None),
        )
    )
    return result.first()


async def delete_endpoint(
    session: AsyncSession, organization_id: UUID, endpoint_id: UUID, at: datetime
) -> bool:
    result = await session.execute(
        update(webhook_endpoints)
        .where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.organization_id == organization_id,
            webhook_endpoints.c.deleted_at.is_(None),
        )
        .values(deleted_at=at)
        .returning(webhook_endpoints.c.id)
    )
    # what was still to go to it is dropped: the partner asked for nothing more
    await session.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.state == "pending"
        )
        .values(state="cancelled", last_error="endpoint deleted")
    )
    return result.first() is not None


async def add_webhook_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(webhook_deliveries).values(rows).on_conflict_do_nothing())
        await session.execute(text(f"NOTIFY {WEBHOOKS_CHANNEL}"))


async def webhook_deliveries_of(
    session: AsyncSession, endpoint_id: UUID, limit: int
) -> list[AnyRow]:
    result = await session.execute(
        select(webhook_deliveries)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id)
        .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
        .limit(limit)
    )
    return list(result.all())


async def replay_webhook_delivery(
    session: AsyncSession, organization_id: UUID, delivery_id: str, at: datetime
) -> AnyRow | None:
    result = await session.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.organization_id == organization_id,
            webhook_deliveries.c.state.in_(("failed", "delivered")),
        )
        .values(state="pending", attempts=0, next_attempt_at=at, last_error=None)
        .returning(webhook_deliveries)
    )
    await session.execute(text(f"NOTIFY {WEBHOOKS_CHANNEL}"))
    return result.first()


async def webhook_delivery_of(
    session: AsyncSession, organization_id: UUID, delivery_id: str
) -> AnyRow | None:
    result = await session.execute(
        select(webhook_deliveries).where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.organization_id == organization_id,
        )
    )
    return result.first()


# Due deliveries in time order, but at most :per_endpoint in flight per endpoint: an
# endpoint's deliveries are ranked, and those beyond its free slots are left pending.
CLAIM_WEBHOOK_DELIVERIES = text(
    """
    WITH ranked AS (
        SELECT w.id, w.next_attempt_at,
               row_number() OVER (PARTITION BY w.endpoint_id ORDER BY w.next_attempt_at, w.id)
                   + COALESCE(busy.n, 0) AS place
        FROM webhook_deliveries AS w
        LEFT JOIN unnest(CAST(:busy_endpoints AS uuid[]), CAST(:busy_counts AS int[]))
            AS busy (endpoint_id, n) ON busy.endpoint_id = w.endpoint_id
        WHERE w.state = 'pending' AND w.next_attempt_at <= :now
          AND COALESCE(busy.n, 0) < :per_endpoint
    ),
    due AS (
        SELECT w.id FROM webhook_deliveries AS w JOIN ranked ON ranked.id = w.id
        WHERE ranked.place <= :per_endpoint
          AND w.state = 'pending' AND w.next_attempt_at <= :now
        ORDER BY ranked.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF w SKIP LOCKED
    )
    UPDATE webhook_deliveries AS d SET
        attempts = d.attempts + 1,
        next_attempt_at = :lease_until
    FROM due, webhook_endpoints AS e
    WHERE d.id = due.id AND e.id = d.endpoint_id
    RETURNING d.id, d.endpoint_id, d.body, d.attempts, d.created_at, e.url, e.secret
    """
)


async def claim_webhook_deliveries(
    session: AsyncSession,
    now: datetime,
    lease_until: datetime,
    limit: int,
    *,
    per_endpoint: int = 1_000_000,
    busy: dict[UUID, int] | None = None,
) -> list[AnyRow]:
    """Take due deliveries, at most ``per_endpoint`` in flight per endpoint counting the
    ``busy`` ones (endpoint id → requests this replica has in flight); one still in flight
    when its lease ends is sent again (partners dedupe on ``webhook-id``, as Standard
    Webhooks asks of them)."""
    busy = {e: n for e, n in (busy or {}).items() if n > 0}
    result = await session.execute(
        CLAIM_WEBHOOK_DELIVERIES,
        {
            "now": now,
            "lease_until": lease_until,
            "limit": limit,
            "per_endpoint": per_endpoint,
            "busy_endpoints": list(busy),
            "busy_counts": list(busy.values()),
        },
    )
    return list(result.all())


async def set_webhook_outcome(
    session: AsyncSession,
    delivery_id: str,
    *,
    state: str,
    at: datetime,
    status: int | None,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"state": state, "last_status": status, "last_error": error}
    if state == "delivered":
        values["delivered_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    await session.execute(
        update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(**values)
    )


async def next_webhook_at(session: AsyncSession, full: list[UUID] | None = None) -> datetime | None:
    """When the next pending delivery is due, leaving out the endpoints in ``full``."""
    query = select(func.min(webhook_deliveries.c.next_attempt_at)).where(
        webhook_deliveries.c.state == "pending"
    )
    if full:
        query = query.where(webhook_deliveries.c.endpoint_id.not_in(full))
    return await session.scalar(query)
