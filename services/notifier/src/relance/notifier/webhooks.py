"""Outbound partner webhooks: messages written with the event that causes them, and the
loop that delivers them, signed (Standard Webhooks 1.0), retried for a day.

Each delivery runs as its own task under a cap (``concurrency``), and each endpoint may hold
at most ``per_endpoint`` of those slots: a slow or dead partner holds only its own few
requests, its other deliveries stay pending until one of its slots frees, and the other
partners and the emails (another loop) never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid5

import httpx
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.clock import Clock
from relance.common.db import Database
from relance.common.events import Event
from relance.common.logging import get_logger
from relance.common.notify import keep_listening, wait_until_woken
from relance.common.signing import signed_headers
from relance.notifier import repository as repo
from relance.notifier.partners import (
    partner_messages,
    retry_delay,
    webhook_body,
    with_invoice_names,
)

log = get_logger(__name__)
WEBHOOKS = Counter("relance_webhooks_total", "Partner webhook attempts by outcome", ["outcome"])
LEASE = timedelta(minutes=2)


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
    copies = await repo.invoice_names(session, list({event.data.invoice_id for event, _ in caused}))
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
        rows += delivery_rows(
            event, with_invoice_names(messages, copy), endpoints[event.organization_id]
        )
    await repo.add_webhook_deliveries(session, rows)


def delivery_rows(
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


class WebhookDelivery:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        concurrency: int = 32,
        per_endpoint: int = 4,
        timeout_seconds: float = 10.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._busy: dict[UUID, int] = {}  # requests in flight per endpoint
        self._timeout = timeout_seconds
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._in_flight: dict[asyncio.Task[None], UUID] = {}

    async def run(self) -> None:
        listener = asyncio.create_task(
            keep_listening(self._database.url, repo.WEBHOOKS_CHANNEL, self._wake)
        )
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            try:
                while True:
                    self._wake.clear()
                    try:
                        await self.start_due(client)
                        sleep = await self._seconds_to_next()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        log.warning("could not deliver webhooks, will retry", error=repr(exc))
                        sleep = self._poll_seconds
                    await wait_until_woken(self._wake, sleep)
            finally:
                listener.cancel()
                for task in (listener, *self._in_flight):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(listener, *self._in_flight, return_exceptions=True)

    async def start_due(self, client: httpx.AsyncClient) -> int:
        """Start as many due deliveries as there are free slots; return how many."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        now = self._clock.now()
        async with self._database.transaction() as session:
            claimed = await repo.claim_webhooks(
                session,
                now,
                now + LEASE,
                free,
                per_endpoint=self._per_endpoint,
                busy=dict(self._busy),
            )
        for row in claimed:
            task = asyncio.create_task(self._deliver(client, row))
            self._in_flight[task] = row.endpoint_id
            self._busy[row.endpoint_id] = self._busy.get(row.endpoint_id, 0) + 1
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        endpoint_id = self._in_flight.pop(task, None)
        if endpoint_id is not None:
            self._busy[endpoint_id] -= 1
            if self._busy[endpoint_id] <= 0:
                del self._busy[endpoint_id]
        self._wake.set()  # a slot is free: claim more at once

    async def deliver_all_due(self, client: httpx.AsyncClient) -> None:
        """Start what is due and wait for it (tests and benchmarks)."""
        while await self.start_due(client) or self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _deliver(self, client: httpx.AsyncClient, row: Any) -> None:
        payload = json.dumps(row.body, separators=(",", ":"))
        at = self._clock.now()
        status: int | None = None
        try:
            response = await client.post(
                row.url, content=payload, headers=signed_headers(row.secret, row.id, at, payload)
            )
            status = response.status_code
            error = None if response.is_success else f"answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self._clock.now()
        async with self._database.transaction() as session:
            if error is None:
                await repo.webhook_outcome(
                    session, row.id, state="delivered", at=now, status=status, error=None
                )
                WEBHOOKS.labels("delivered").inc()
                return
            delay = retry_delay(row.attempts)
            if delay is None:
                await repo.webhook_outcome(
                    session, row.id, state="failed", at=now, status=status, error=error
                )
                WEBHOOKS.labels("failed").inc()
            else:
                await repo.webhook_outcome(
                    session,
                    row.id,
                    state="pending",
                    at=now,
                    status=status,
                    error=error,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
                WEBHOOKS.labels("retried").inc()

    async def _seconds_to_next(self) -> float:
        if len(self._in_flight) >= self._concurrency:
            return self._poll_seconds  # a finished request wakes the loop
        full = [e for e, n in self._busy.items() if n >= self._per_endpoint]
        async with self._database.transaction() as session:
            next_at = await repo.next_webhook_at(session, full)
        if next_at is None:
            return self._poll_seconds
        return min(max((next_at - self._clock.now()).total_seconds(), 0.0), self._poll_seconds)
