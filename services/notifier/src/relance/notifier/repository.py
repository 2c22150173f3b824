"""Every SQL statement of the notifier, and only here."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.notifier.tables import (
    deliveries,
    invoices,
    template_overrides,
    webhook_deliveries,
    webhook_endpoints,
)

AnyRow = Row[Any]
DELIVERIES_CHANNEL = "relance_deliveries"


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


async def add_delivery(session: AsyncSession, values: dict[str, Any]) -> bool:
    """A delivery for a step; False if the step already has one (a repeated reminder.due)."""
    result = await session.execute(
        insert(deliveries).values(**values).on_conflict_do_nothing().returning(deliveries.c.step_id)
    )
    await session.execute(text(f"NOTIFY {DELIVERIES_CHANNEL}"))
    return result.first() is not None


CLAIM_DELIVERIES = text(
    """
    WITH due AS (
        SELECT step_id FROM deliveries
        WHERE state IN ('pending', 'sending') AND next_attempt_at <= :now
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries SET
        state = CASE WHEN deliveries.state = 'sending' THEN 'failed' ELSE 'sending' END,
        attempts = deliveries.attempts + CASE WHEN deliveries.state = 'sending' THEN 0 ELSE 1 END,
        next_attempt_at = :lease_until,
        last_error = CASE WHEN deliveries.state = 'sending' THEN :in_doubt
                          ELSE deliveries.last_error END,
        done_at = CASE WHEN deliveries.state = 'sending' THEN :now END
    FROM due
    WHERE deliveries.step_id = due.step_id
    RETURNING deliveries.*
    """
)
IN_DOUBT = (
    "the notifier stopped while sending this email: it may have reached the mail server; "
    "not sent again, to never send it twice"
)


async def claim_deliveries(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[AnyRow]:
    """Take up to ``limit`` due deliveries, marked ``sending`` until ``lease_until``.

    A delivery still ``sending`` when its lease ran out was interrupted mid-send: it comes
    back ``failed`` (in doubt), never ``sending`` again.
    """
    result = await session.execute(
        CLAIM_DELIVERIES,
        {"now": now, "lease_until": lease_until, "limit": limit, "in_doubt": IN_DOUBT},
    )
    return list(result.all())


FINISH_DELIVERY = (
    update(deliveries)
    .where(deliveries.c.step_id == bindparam("b_step_id"))
    .values(
        state=bindparam("b_state"),
        done_at=bindparam("b_at"),
        recipient=bindparam("b_recipient"),
        last_error=bindparam("b_error"),
    )
)


async def finish_deliveries(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Deliveries finished in one round of statements: each outcome has
    ``step_id``, ``state``, ``at``, ``recipient`` and ``error``."""
    if outcomes:
        await session.execute(
            FINISH_DELIVERY,
            [{f"b_{name}": value for name, value in o.items()} for o in outcomes],
        )


async def release_deliveries(session: AsyncSession, step_ids: list[UUID], at: datetime) -> None:
    """Put back claimed deliveries whose email was never begun (the sender was stopped):
    ``pending`` again, due at ``at``, their attempt given back."""
    if step_ids:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.step_id.in_(step_ids), deliveries.c.state == "sending")
            .values(state="pending", next_attempt_at=at, attempts=deliveries.c.attempts - 1)
        )


async def retry_delivery(session: AsyncSession, step_id: UUID, at: datetime, error: str) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.step_id == step_id)
        .values(state="pending", next_attempt_at=at, last_error=error)
    )


async def await_invoice(
    session: AsyncSession, step_id: UUID, since: datetime, at: datetime, error: str
) -> None:
    """Back to ``pending`` until ``at`` to wait for the invoice's copy; the claim's attempt
    is given back, since the attempts are meant for the mail server's failures. If the copy
    arrived meanwhile (while the delivery was ``sending``, which :func:`invoice_arrived`
    leaves alone), it is due at ``since`` instead: at once."""
    arrived = (
        select(invoices.c.invoice_id)
        .where(
            invoices.c.invoice_id == deliveries.c.invoice_id,
            invoices.c.organization_id == deliveries.c.organization_id,
        )
        .exists()
    )
    await session.execute(
        update(deliveries)
        .where(deliveries.c.step_id == step_id)
        .values(
            state="pending",
            next_attempt_at=case((arrived, func.least(since, at)), else_=at),
            last_error=error,
            attempts=deliveries.c.attempts - 1,
            invoice_awaited_since=func.coalesce(deliveries.c.invoice_awaited_since, since),
        )
    )


async def invoice_arrived(
    session: AsyncSession, organization_id: UUID, invoice_id: UUID, at: datetime
) -> bool:
    """Make the deliveries that wait for this invoice due at ``at``, and wake the sending
    loop if there are any; True if there were."""
    result = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.invoice_id == invoice_id,
            deliveries.c.organization_id == organization_id,
            deliveries.c.state == "pending",
            deliveries.c.invoice_awaited_since.is_not(None),
        )
        .values(next_attempt_at=func.least(deliveries.c.next_attempt_at, at))
        .returning(deliveries.c.step_id)
    )
    if result.first() is None:
        return False
    await session.execute(text(f"NOTIFY {DELIVERIES_CHANNEL}"))
    return True


async def next_delivery_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.state.in_(("pending", "sending"))
        )
    )


# Partner webhooks

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


async def endpoint(
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


async def deliveries_of(session: AsyncSession, endpoint_id: UUID, limit: int) -> list[AnyRow]:
    result = await session.execute(
        select(webhook_deliveries)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id)
        .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
        .limit(limit)
    )
    return list(result.all())


async def replay_delivery(
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


async def delivery_of(
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
CLAIM_WEBHOOKS = text(
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


async def claim_webhooks(
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
        CLAIM_WEBHOOKS,
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


async def webhook_outcome(
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


# Template overrides


async def override_of(
    session: AsyncSession, organization_id: UUID, kind: str, language: str
) -> AnyRow | None:
    result = await session.execute(
        select(template_overrides).where(
            template_overrides.c.organization_id == organization_id,
            template_overrides.c.kind == kind,
            template_overrides.c.language == language,
        )
    )
    return result.first()


async def overrides_of(
    session: AsyncSession, organization_ids: list[UUID]
) -> dict[tuple[UUID, str, str], AnyRow]:
    """These organizations' templates, by (organization, kind, language)."""
    if not organization_ids:
        return {}
    result = await session.execute(
        select(template_overrides).where(template_overrides.c.organization_id.in_(organization_ids))
    )
    return {(row.organization_id, row.kind, row.language): row for row in result}


async def save_override(session: AsyncSession, values: dict[str, Any]) -> None:
    statement = insert(template_overrides).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["organization_id", "kind", "language"],
            set_={
                "subject": statement.excluded.subject,
                "body": statement.excluded.body,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


async def delete_override(
    session: AsyncSession, organization_id: UUID, kind: str, language: str
) -> bool:
    result = await session.execute(
        template_overrides.delete()
        .where(
            template_overrides.c.organization_id == organization_id,
            template_overrides.c.kind == kind,
            template_overrides.c.language == language,
        )
        .returning(template_overrides.c.kind)
    )
    return result.first() is not None
