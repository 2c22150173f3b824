"""Every SQL statement on email deliveries (one per reminder step) and on the
organizations' own email templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.notifier.tables import deliveries, invoices, template_overrides

AnyRow = Row[Any]
EMAILS_CHANNEL = "relance_deliveries"  # NOTIFY'd when an email delivery becomes due


async def add_email_delivery(session: AsyncSession, values: dict[str, Any]) -> bool:
    """A delivery for a step; False if the step already has one (a repeated reminder.due)."""
    result = await session.execute(
        insert(deliveries).values(**values).on_conflict_do_nothing().returning(deliveries.c.step_id)
    )
    await session.execute(text(f"NOTIFY {EMAILS_CHANNEL}"))
    return result.first() is not None


CLAIM_EMAIL_DELIVERIES = text(
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
LEASE_ENDED_IN_DOUBT = (
    "the notifier stopped while sending this email: it may have reached the mail server; "
    "not sent again, to never send it twice"
)


async def claim_email_deliveries(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[AnyRow]:
    """Take up to ``limit`` due deliveries, marked ``sending`` until ``lease_until``.

    A delivery still ``sending`` when its lease ran out was interrupted mid-send: it comes
    back ``failed`` (in doubt), never ``sending`` again.
    """
    result = await session.execute(
        CLAIM_EMAIL_DELIVERIES,
        {"now": now, "lease_until": lease_until, "limit": limit, "in_doubt": LEASE_ENDED_IN_DOUBT},
    )
    return list(result.all())


FINISH_EMAIL_DELIVERY = (
    update(deliveries)
    .where(deliveries.c.step_id == bindparam("b_step_id"))
    .values(
        state=bindparam("b_state"),
        done_at=bindparam("b_at"),
        recipient=bindparam("b_recipient"),
        last_error=bindparam("b_error"),
    )
)


async def finish_email_deliveries(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Deliveries finished in one round of statements: each outcome has
    ``step_id``, ``state``, ``at``, ``recipient`` and ``error``."""
    if outcomes:
        await session.execute(
            FINISH_EMAIL_DELIVERY,
            [{f"b_{name}": value for name, value in o.items()} for o in outcomes],
        )


async def release_email_deliveries(
    session: AsyncSession, step_ids: list[UUID], at: datetime
) -> None:
    """Put back claimed deliveries whose email was never begun (the sender was stopped):
    ``pending`` again, due at ``at``, their attempt given back."""
    if step_ids:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.step_id.in_(step_ids), deliveries.c.state == "sending")
            .values(state="pending", next_attempt_at=at, attempts=deliveries.c.attempts - 1)
        )


async def retry_email_delivery(
    session: AsyncSession, step_id: UUID, at: datetime, error: str
) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.step_id == step_id)
        .values(state="pending", next_attempt_at=at, last_error=error)
    )


async def email_awaits_invoice(
    session: AsyncSession, step_id: UUID, since: datetime, at: datetime, error: str
) -> None:
    """Back to ``pending`` until ``at`` to wait for the invoice's copy; the claim's attempt
    is given back, since the attempts are meant for the mail server's failures. If the copy
    arrived meanwhile (while the delivery was ``sending``, which :func:`wake_emails_awaiting`
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


async def wake_emails_awaiting(
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
    await session.execute(text(f"NOTIFY {EMAILS_CHANNEL}"))
    return True


async def next_email_delivery_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.state.in_(("pending", "sending"))
        )
    )


# An organization's own wording of its emails


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
