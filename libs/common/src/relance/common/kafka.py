"""The one Kafka producer wrapper and the one consumer loop every service uses.

The consumer applies each event in its own database transaction, records its id in the
inbox in that same transaction (so a redelivery does nothing), and commits offsets only
after the transaction. A message that can never be applied (unparseable, unknown type,
invalid payload, or a handler that keeps failing) is parked in ``dead_letters`` with its
raw bytes and the partition moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import asyncpg
import sqlalchemy.exc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord
from opentelemetry.trace import SpanKind
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.db import Database
from relance.common.events import Event, KafkaRecord, PoisonMessage, from_record
from relance.common.inbox import claim_event
from relance.common.logging import bind_context, get_logger
from relance.common.metrics import CONSUMER_LAG, EVENTS_CONSUMED
from relance.common.partitioning import partitions_for
from relance.common.tables import dead_letters
from relance.common.tracing import enabled as tracing_enabled
from relance.common.tracing import resumed

log = get_logger(__name__)

Handler = Callable[[AsyncSession, Event[Any]], Awaitable[None]]

# Failures of the database connection, not of the event: retried until the database is back.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    ConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)

# How long the broker may hold a fetch that finds nothing new. The embedded broker answers
# at this deadline even when a record arrives meanwhile, so it bounds how late an event is
# seen: 500 ms (aiokafka's default) made a new organization's key take 250 ms on average to
# reach the other services. One empty fetch every 100 ms per broker costs next to nothing.
FETCH_MAX_WAIT_MS = 100


class EventProducer:
    """aiokafka producer set for the outbox: acks from all replicas, small linger for batching.

    Idempotence stays off (the embedded broker refuses it); consumers dedupe by event id.
    """

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop: the producer can only be made here
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=10_000,
            retry_backoff_ms=200,
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            self._producer = None
            raise

    @property
    def started(self) -> bool:
        return self._producer is not None

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the producer is not connected to the broker")
        return self._producer

    async def stop(self, give_up_after: float | None = None) -> None:
        """Flush and disconnect. aiokafka can wait forever for a batch it cannot deliver:
        after ``give_up_after`` seconds the producer is abandoned (what it held stays in the
        outbox, since rows are deleted only once acknowledged)."""
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        try:
            async with asyncio.timeout(give_up_after):
                await producer.stop()
        except TimeoutError:
            log.error("the producer did not stop in time, abandoned", after_seconds=give_up_after)

    async def send(self, record: KafkaRecord) -> asyncio.Future[Any]:
        """Queue a record; the returned future resolves once the broker acknowledged it."""
        return await self._require().send(
            record.topic, record.value, key=record.key, headers=record.headers
        )

    async def send_many(self, records: Iterable[KafkaRecord]) -> None:
        """Send in order and wait for every acknowledgement; raises if any failed.

        Records are grouped by partition into a few large batches (one future each instead
        of one per record: most of the relay's time went there). A partition's batches go
        out one after the other, so each key keeps its order.
        """
        producer = self._require()
        by_topic: dict[str, list[KafkaRecord]] = defaultdict(list)
        for record in records:
            by_topic[record.topic].append(record)
        by_partition: dict[tuple[str, int], list[KafkaRecord]] = defaultdict(list)
        for topic, of_topic in by_topic.items():
            count = len(await producer.partitions_for(topic))
            # the keys of a batch are hashed together: one by one, hashing cost the relay more
            partitions = partitions_for([record.key for record in of_topic], count)
            for record, partition in zip(of_topic, partitions, strict=True):
                by_partition[(topic, partition)].append(record)
        futures = []
        for (topic, partition), group in by_partition.items():
            batch = producer.create_batch()
            for record in group:
                if not _append(batch, record):
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if not _append(batch, record):
                        raise ValueError(f"a record of {len(record.value)} bytes is too large")
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def ping(self) -> None:
        await self._require().client.fetch_all_metadata()


def _append(batch: Any, record: KafkaRecord) -> bool:
    """Add the record to the batch; False when the batch is full."""
    added = batch.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
    return added is not None


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (development and tests; production uses IaC)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Commits what was applied before partitions move to another member."""

    def __init__(self, loop: EventConsumer) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.commit_applied()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # called at each join, even with no partition for this member: the group is formed
        self._loop.joined = True
        log.info(
            "partitions assigned",
            partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in assigned),
        )


class EventConsumer:
    """Reads ``topics`` as member of ``group_id`` and applies events with ``handlers``.

    Types without a handler are acknowledged and skipped: a topic carries events for
    several consumers.

    ``caught_up`` turns true once the group is formed and has applied every event that was
    on ``catch_up_topics`` when it looked (the organizations, whose API keys every request
    needs), and stays true: the service is ready then. It is a property of the group, read
    from its committed offsets, since all replicas of a service share one database.
    """

    def __init__(
        self,
        *,
        database: Database,
        bootstrap_servers: str,
        group_id: str,
        topics: Iterable[str],
        handlers: Mapping[str, Handler],
        catch_up_topics: Iterable[str] = (),
        handler_attempts: int = 3,
        retry_delay_seconds: float = 0.5,
        max_records: int = 500,
    ) -> None:
        self._database = database
        self._topics = list(topics)
        self._handlers = dict(handlers)
        self._handler_attempts = handler_attempts
        self._retry_delay = retry_delay_seconds
        self._max_records = max_records
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._applied: dict[TopicPartition, int] = {}  # applied, offset not yet committed
        self._positions: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._catch_up_topics = [topic for topic in catch_up_topics if topic in self._topics]
        self.running = False
        self.joined = False
        self.caught_up = False

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))

    async def stop(self) -> None:
        """Commit what was applied and leave the group."""
        async with self._lock:
            await self._commit_locked()
        await self._consumer.stop()

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                batches = await self._consumer.getmany(
                    # until caught up, look often: the service is not ready meanwhile
                    timeout_ms=1000 if self.caught_up else 50,
                    max_records=self._max_records,
                )
                async with self._lock:
                    for partition, records in batches.items():
                        for record in records:
                            await self._apply(record)
                            self._applied[partition] = record.offset + 1
                            self._positions[partition] = record.offset + 1
                    await self._commit_locked()
                if not self.caught_up and self.joined:
                    self.caught_up = await self._group_has_caught_up()
                    if self.caught_up:
                        log.info("consumer caught up", topics=self._catch_up_topics)
                self._report_lag()
        finally:
            self.running = False

    async def _group_has_caught_up(self) -> bool:
        partitions: list[TopicPartition] = []
        for topic in self._catch_up_topics:
            numbers = self._consumer.partitions_for_topic(topic)
            if not numbers:
                return False  # the topic's metadata is not known yet
            partitions.extend(TopicPartition(topic, number) for number in numbers)
        if not partitions:
            return True
        ends = await self._consumer.end_offsets(partitions)
        for tp in partitions:
            if ends[tp] > (await self._consumer.committed(tp) or 0):
                return False
        return True

    async def commit_applied(self) -> None:
        async with self._lock:
            await self._commit_locked()

    async def _commit_locked(self) -> None:
        if not self._applied:
            return
        offsets, self._applied = self._applied, {}
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if offsets:
            await self._consumer.commit(offsets)

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = from_record(list(record.headers), record.value)
        except PoisonMessage as poison:
            await self._park(record, poison.reason, poison.event_id, poison.event_type)
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            EVENTS_CONSUMED.labels(event.type, "ignored").inc()
            return
        with (
            bind_context(event_id=str(event.id), event_type=event.type),
            _processing_span(event, record),
        ):
            attempt = 0
            while True:
                attempt += 1
                try:
                    async with self._database.transaction() as session:
                        if not await claim_event(session, event.id, event.type):
                            EVENTS_CONSUMED.labels(event.type, "duplicate").inc()
                            return
                        await handler(session, event)
                    EVENTS_CONSUMED.labels(event.type, "applied").inc()
                    return
                except TRANSIENT_ERRORS as exc:
                    # the database is away: nothing can be applied, so wait for it rather
                    # than park events that are fine
                    delay = min(self._retry_delay * 2**attempt, 30.0)
                    log.warning("database unavailable, retrying", error=repr(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                except Exception as exc:
                    if isinstance(exc, PoisonMessage) or attempt >= self._handler_attempts:
                        await self._park(
                            record, f"handler failed: {exc!r}", str(event.id), event.type
                        )
                        return
                    log.warning("handler failed, retrying", attempt=attempt, error=repr(exc))
                    await asyncio.sleep(self._retry_delay * attempt)

    async def _park(
        self,
        record: ConsumerRecord[bytes, bytes],
        error: str,
        event_id: str | None,
        event_type: str | None,
    ) -> None:
        log.error(
            "message parked in dead_letters",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=event_id,
            error=error,
        )
        headers = {name: raw.decode(errors="replace") for name, raw in record.headers}
        async with self._database.transaction() as session:
            await session.execute(
                insert(dead_letters).values(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    headers=headers,
                    event_id=event_id,
                    event_type=event_type,
                    error=error[:4000],
                )
            )
        EVENTS_CONSUMED.labels(event_type or "unreadable", "dead_lettered").inc()

    def _report_lag(self) -> None:
        for tp, position in self._positions.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(tp.topic, tp.partition).set(max(0, highwater - position))


def _processing_span(
    event: Event[Any], record: ConsumerRecord[bytes, bytes]
) -> AbstractContextManager[Any]:
    """The span of one event's handling, child of the span that made the event."""
    if not tracing_enabled():
        return nullcontext()
    return resumed(
        event.traceparent,
        f"{event.type} process",
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.message.id": str(event.id),
            "relance.invoice_id": event.subject,
            "relance.organization_id": str(event.organization_id),
        },
    )
