"""The partner webhook use cases: the messages an event causes, queued for every endpoint
that wants them in the transaction that applies the event; a partner's endpoints, their
delivery log and its replay; what an attempt's answer makes of a delivery.

The loop that sends them is in ``workers.py``; what each event becomes is in
``partners.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Conflict, NotFound, Unprocessable
from relance.common.events import Event
from relance.common.signing import new_webhook_secret
from relance.notifier import repository as invoice_repo
from relance.notifier.webhooks import repository as repo
from relance.notifier.webhooks.partners import (
    partner_messages,
    retry_delay,
    url_problem,
    webhook_body,
    with_invoice_names,
)

MAX_DELIVERY_ID_LENGTH = 100


async def fan_out(session: AsyncSession, event: Event[Any]) -> None:
    """Queue the partner messages ``event`` causes for every endpoint that wants them, in
    the caller's transaction. A redelivered event queues nothing new: ids derive from it."""
    await fan_out_all(session, [event])


async def fan_out_all(session: AsyncSession, events: list[Event[Any]]) -> None:
    """:func:`fan_out` for several events, reading each organization's endpoints once and
    the copies of their invoices (for the names partners know them by) in one statement."""
    caused = [(event, messages) for event in events if (messages := partner_messages(event))]
    if not caused:
        return
    copies = await invoice_repo.invoice_names(
        session, list({event.data.invoice_id for event, _ in caused})
    )
    endpoints: dict[UUID, list[Any]] = {}
    rows = []
    for event, messages in caused:
        copy = copies.get(event.data.invoice_id)
        if copy is not None and copy.organization_id != event.organization_id:
            copy = None
        if event.organization_id not in endpoints:
            endpoints[event.organization_id] = await repo.endpoints_of(
                session, event.organization_id
            )
        rows += webhook_delivery_rows(
            event, with_invoice_names(messages, copy), endpoints[event.organization_id]
        )
    await repo.add_webhook_deliveries(session, rows)


def webhook_delivery_rows(
    event: Event[Any], messages: list[tuple[str, dict[str, Any]]], endpoints: list[Any]
) -> list[dict[str, Any]]:
    return [
        {
            "id": f"msg_{uuid5(event.id, f'{endpoint.id}/{message_type}').hex}",
            "endpoint_id": endpoint.id,
            "organization_id": event.organization_id,
            "event_type": message_type,
            "body": webhook_body(message_type, data, event.time),
            "state": "pending",
            "next_attempt_at": event.time,
            "created_at": event.time,
        }
        for message_type, data in messages
        for endpoint in endpoints
        if message_type in endpoint.event_types
    ]


# A partner's endpoints and their delivery log


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    id: UUID
    url: str
    events: list[str]
    created_at: datetime
    secret: str  # shown once, to the partner that registers it


async def create_endpoint(
    session: AsyncSession,
    organization_id: UUID,
    url: str,
    events: Sequence[str],
    *,
    allowed_hosts: tuple[str, ...],
    now: datetime,
) -> NewEndpoint:
    """Subscribe a partner URL to some message types, with a new signing secret."""
    problem = url_problem(url, allowed_hosts)
    if problem:
        raise Unprocessable("url", problem)
    endpoint = NewEndpoint(uuid4(), url, list(events), now, new_webhook_secret())
    await repo.add_endpoint(
        session,
        {
            "id": endpoint.id,
            "organization_id": organization_id,
            "url": url,
            "event_types": endpoint.events,
            "secret": endpoint.secret,
            "created_at": now,
        },
    )
    return endpoint


async def endpoints_of(session: AsyncSession, organization_id: UUID) -> list[Any]:
    return await repo.endpoints_of(session, organization_id)


async def endpoint_of(session: AsyncSession, organization_id: UUID, endpoint_id: UUID) -> Any:
    row = await repo.endpoint_of(session, organization_id, endpoint_id)
    if row is None:
        raise NotFound("webhook endpoint")
    return row


async def delete_endpoint(
    session: AsyncSession, organization_id: UUID, endpoint_id: UUID, now: datetime
) -> None:
    """Stop sending to it; what was still waiting is dropped, the log is kept."""
    if not await repo.delete_endpoint(session, organization_id, endpoint_id, now):
        raise NotFound("webhook endpoint")


async def webhook_deliveries_of(
    session: AsyncSession, organization_id: UUID, endpoint_id: UUID, limit: int
) -> list[Any]:
    """The endpoint's delivery log, newest first."""
    await endpoint_of(session, organization_id, endpoint_id)
    return await repo.webhook_deliveries_of(session, endpoint_id, limit)


async def replay_webhook_delivery(
    session: AsyncSession, organization_id: UUID, delivery_id: str, now: datetime
) -> Any:
    """Send a delivery again now; refused while it is still being attempted."""
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
        raise NotFound("webhook delivery")
    row = await repo.replay_webhook_delivery(session, organization_id, delivery_id, now)
    if row is not None:
        return row
    if await repo.webhook_delivery_of(session, organization_id, delivery_id) is None:
        raise NotFound("webhook delivery")
    raise Conflict("the delivery is still being attempted")


# What an attempt's answer makes of a delivery


async def record_webhook_attempt(
    session: AsyncSession,
    delivery: Any,
    *,
    status: int | None,
    error: str | None,
    now: datetime,
) -> str:
    """``delivered`` (no ``error``), ``retried`` later, or ``failed`` once the retries are
    spent (it then waits for a replay); returns which."""
    if error is None:
        await repo.set_webhook_outcome(
            session, delivery.id, state="delivered", at=now, status=status, error=None
        )
        return "delivered"
    delay = retry_delay(delivery.attempts)
    if delay is None:
        await repo.set_webhook_outcome(
            session, delivery.id, state="failed", at=now, status=status, error=error
        )
        return "failed"
    await repo.set_webhook_outcome(
        session,
        delivery.id,
        state="pending",
        at=now,
        status=status,
        error=error,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    return "retried"
