"""The loop that delivers partner webhooks, signed (Standard Webhooks 1.0), retried for a
day (the messages are queued by ``service.py`` with the event that causes them).

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
from uuid import UUID

import httpx
from prometheus_client import Counter

from relance.common.clock import Clock, seconds_until
from relance.common.db import Database
from relance.common.logging import get_logger
from relance.common.notify import keep_listening, wait_until_woken
from relance.common.service import Runtime
from relance.common.signing import signed_headers
from relance.notifier.settings import NotifierSettings
from relance.notifier.webhooks import repository as repo
from relance.notifier.webhooks.service import record_webhook_attempt

log = get_logger(__name__)
WEBHOOKS = Counter("relance_webhooks_total", "Partner webhook attempts by outcome", ["outcome"])
LEASE = timedelta(minutes=2)


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
            claimed = await repo.claim_webhook_deliveries(
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
            outcome = await record_webhook_attempt(
                session, row, status=status, error=error, now=now
            )
        WEBHOOKS.labels(outcome).inc()

    async def _seconds_to_next(self) -> float:
        if len(self._in_flight) >= self._concurrency:
            return self._poll_seconds  # a finished request wakes the loop
        full = [e for e, n in self._busy.items() if n >= self._per_endpoint]
        async with self._database.transaction() as session:
            next_at = await repo.next_webhook_at(session, full)
        return seconds_until(next_at, self._clock.now(), at_most=self._poll_seconds)


async def deliver_webhooks(runtime: Runtime[NotifierSettings]) -> None:
    """The delivery loop with the service's settings (off when ``RUN_WEBHOOKS`` is false)."""
    settings = runtime.settings
    if not settings.run_webhooks:
        return
    await WebhookDelivery(
        runtime.database,
        runtime.clock,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_per_endpoint_concurrency,
        timeout_seconds=settings.webhook_timeout_seconds,
    ).run()
