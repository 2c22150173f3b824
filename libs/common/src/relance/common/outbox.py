"""The transactional outbox: events are written with the change that causes them, then relayed.

``add_event`` inserts the event in the caller's transaction and notifies the relay at
commit. The :class:`OutboxRelay` publishes unpublished rows in id order, waits for the
broker's acknowledgements, and deletes them. It polls (NOTIFY only wakes it early: a
notification is lost when its connection drops) and never tracks a "highest id seen",
since ids commit out of order. A transaction-scoped advisory lock lets one relay of a
database publish at a time, which keeps one key's events in order when several replicas
run. A crash between publish and delete republishes the batch: consumers dedupe by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.db import Database
from relance.common.events import Event, KafkaRecord, to_record
from relance.common.kafka import EventProducer
from relance.common.logging import get_logger
from relance.common.metrics import EVENTS_PRODUCED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from relance.common.notify import keep_listening, wait_until_woken
from relance.common.tables import outbox

log = get_logger(__name__)

CHANNEL = "relance_outbox"
_RELAY_LOCK_KEY = 0x52454C4F  # any constant: one relay per database publishes at a time
BACKLOG_MEASURE_SECONDS = 5.0  # how often the backlog gauges are refreshed


async def add_event(session: AsyncSession, event: Event[Any]) -> None:
    """Write ``event`` to the outbox as part of the session's current transaction."""
    await add_events(session, [event])


async def add_events(session: AsyncSession, events: list[Event[Any]]) -> None:
    if not events:
        return
    await session.execute(insert(outbox), [outbox_row(event) for event in events])
    await session.execute(text(f"NOTIFY {CHANNEL}"))


def outbox_row(event: Event[Any]) -> dict[str, Any]:
    """The outbox columns of ``event``, for code that writes the row with its own statement
    (and then notifies ``CHANNEL`` in the same transaction, as :func:`add_events` does)."""
    record = to_record(event)
    return {
        "event_id": event.id,
        "event_type": event.type,
        "topic": record.topic,
        "key": record.key,
        "value": record.value,
        "headers": {name: value.decode() for name, value in record.headers},
    }


# The lock is tried once (an uncorrelated subquery): another relay holding it gets no rows.
_READ_BATCH = """
    SELECT id, event_type, topic, key, value, headers::text FROM outbox
    WHERE (SELECT pg_try_advisory_xact_lock($1))
    ORDER BY id
    LIMIT $2
"""
_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


def _records(rows: list[Any]) -> list[KafkaRecord]:
    """The Kafka records of outbox rows (id, event_type, topic, key, value, headers as JSON
    text), in their order. The headers of the whole batch are parsed as one JSON document."""
    headers = json.loads("[" + ",".join([row[5] for row in rows]) + "]")
    return [
        KafkaRecord(row[2], row[3], row[4], [(name, text.encode()) for name, text in pairs.items()])
        for row, pairs in zip(rows, headers, strict=True)
    ]


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        producer: EventProducer,
        *,
        batch_size: int = 2000,
        poll_seconds: float = 1.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._database = database
        self._producer = producer
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self) -> None:
        """Publish forever: drain, then sleep until notified or the poll interval passes."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        measured_at = 0.0
        try:
            while True:
                self._wake.clear()
                try:
                    while await self.publish_batch() == self._batch_size:
                        pass
                    if time.monotonic() - measured_at > BACKLOG_MEASURE_SECONDS:
                        await self.measure_backlog()
                        measured_at = time.monotonic()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox relay could not publish, will retry", error=repr(exc))
                    await asyncio.sleep(self._retry_seconds)
                    continue
                await wait_until_woken(self._wake, self._poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_batch(self) -> int:
        """Publish up to one batch of the oldest rows; return how many were published.

        On asyncpg's own connection: the relay handles every row of every service, and
        SQLAlchemy's work per row (and the JSONB headers decoded one row at a time) cost more
        than the statements. One statement takes the lock and reads the batch, one deletes it.
        """
        async with self._database.driver_connection() as connection, connection.transaction():
            rows = await connection.fetch(_READ_BATCH, _RELAY_LOCK_KEY, self._batch_size)
            if not rows:
                return 0  # nothing waits, or another relay holds the lock
            await self._producer.send_many(_records(rows))
            # one array parameter: rendering 2,000 IN parameters cost more than the delete
            await connection.execute(_DELETE_PUBLISHED, [row[0] for row in rows])
        for event_type, count in Counter(row[1] for row in rows).items():
            EVENTS_PRODUCED.labels(event_type).inc(count)
        self.published += len(rows)
        return len(rows)

    async def measure_backlog(self) -> tuple[int, float]:
        """How many rows wait, and the age in seconds of the oldest one."""
        async with self._database.transaction() as session:
            count, oldest = (
                await session.execute(
                    select(
                        func.count(),
                        func.extract("epoch", func.now() - func.min(outbox.c.created_at)),
                    )
                )
            ).one()
        age = float(oldest or 0)
        OUTBOX_BACKLOG.set(count)
        OUTBOX_OLDEST_AGE.set(age)
        return int(count), age

    async def _listen(self) -> None:
        await keep_listening(self._database.url, CHANNEL, self._wake, self._retry_seconds * 5)
