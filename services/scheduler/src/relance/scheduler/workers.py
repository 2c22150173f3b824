"""The scheduler's long-running loop, the firing: it claims due steps in batches, each in a
transaction that writes their ``reminder.due`` to the outbox (``service.fire_due_steps``).

Any number of replicas may run it: a claim takes only rows no other transaction holds
(``FOR UPDATE SKIP LOCKED``) and marks them fired before it commits, so each step is fired
once. A crash before the commit leaves the steps due for the next claim; after it, their
events are in the outbox and the relay publishes them. Between claims the loop sleeps
until the next step's time, or until a NOTIFY says a sooner one was planned, and never
longer than the poll interval (a notification can be lost).
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Counter, Histogram

from relance.common.clock import Clock, seconds_until
from relance.common.db import Database
from relance.common.logging import get_logger
from relance.common.notify import keep_listening, wait_until_woken
from relance.scheduler import repository as repo
from relance.scheduler import service

log = get_logger(__name__)

STEPS_FIRED = Counter("relance_steps_fired_total", "Reminder steps handed to the notifier")
STEPS_SKIPPED = Counter(
    "relance_steps_skipped_total", "Due steps skipped because a later step was due as well"
)
FIRE_LAG = Histogram(
    "relance_step_fire_lag_seconds",
    "How late each claimed batch fired, from the due time of its oldest step",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


class StepFiring:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        retry_seconds: float = 1.0,
        claims_in_flight: int = 1,
    ) -> None:
        self._database = database
        self._clock = clock
        self._batch_size = batch_size
        self._claims_in_flight = claims_in_flight
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self.fired = 0

    async def run(self) -> None:
        listener = asyncio.create_task(
            keep_listening(self._database.url, repo.STEPS_CHANNEL, self._wake), name="steps-listen"
        )
        try:
            while True:
                self._wake.clear()
                try:
                    await self.fire_all_due()
                    sleep = await self._seconds_to_next_step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not fire due steps, will retry", error=repr(exc))
                    sleep = self._retry_seconds
                await wait_until_woken(self._wake, sleep)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def fire_all_due(self) -> None:
        """Fire batches until one comes back short. When the first batch is full (a burst),
        ``claims_in_flight`` transactions claim side by side, each on its own connection, as
        that many replicas would: one claims while another writes or commits."""
        if await self.fire_due() < self._batch_size:
            return

        async def drain() -> None:
            while await self.fire_due() == self._batch_size:
                pass

        async with asyncio.TaskGroup() as group:
            for _ in range(self._claims_in_flight):
                group.create_task(drain())

    async def fire_due(self) -> int:
        """Claim one batch of due steps and write what they cause; return how many."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            batch = await service.fire_due_steps(session, now, self._batch_size)
            if batch.oldest_due is None:
                return 0
            # the batch's oldest step says how late the batch fired
            FIRE_LAG.observe(max((now - batch.oldest_due).total_seconds(), 0.0))
        STEPS_FIRED.inc(batch.fired)
        STEPS_SKIPPED.inc(batch.claimed - batch.fired)
        self.fired += batch.fired
        return batch.claimed

    async def _seconds_to_next_step(self) -> float:
        async with self._database.transaction() as session:
            next_at = await repo.next_fire_at(session)
        return seconds_until(next_at, self._clock.now(), at_most=self._poll_seconds)
