"""The event machinery end to end on the real embedded PostgreSQL and broker:
outbox → relay → Kafka → consumer loop → inbox, with the failures it must survive, and the
trace context it carries: the span that writes an event is the parent of the span that
handles it, so one trace follows an invoice from service to service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common import tracing
from relance.common.db import Database
from relance.common.events import (
    Event,
    InvoicePayload,
    KafkaRecord,
    from_record,
    invoice_events,
    to_record,
)
from relance.common.kafka import EventConsumer, EventProducer
from relance.common.outbox import _RELAY_LOCK_KEY, OutboxRelay, add_event
from relance.common.partitioning import partition_for
from relance.common.tables import dead_letters, inbox, outbox
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.testing import read_events

ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")
TOPIC = invoice_events.TOPIC


class Numbered(InvoicePayload, event_type="test.numbered", topic=TOPIC):
    """A test-only event: a sequence number per invoice, to check order and effects."""

    seq: int


def numbered(invoice_id: uuid.UUID, seq: int) -> Event[Numbered]:
    return Event.new(
        Numbered(invoice_id=invoice_id, seq=seq),
        source="tests",
        organization_id=ORG,
        time=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )


async def record_effect(session: AsyncSession, event: Event[Any]) -> None:
    """The handler under test: one row per application of an event."""
    await session.execute(
        text("INSERT INTO applied (event_id, invoice_id, seq) VALUES (:e, :i, :s)"),
        {"e": event.id, "i": event.data.invoice_id, "s": event.data.seq},
    )


@pytest_asyncio.fixture
async def db(database: Database) -> Database:
    async with database.transaction() as session:
        await session.execute(
            text(
                "CREATE TABLE applied (n bigserial PRIMARY KEY, event_id uuid NOT NULL,"
                " invoice_id uuid NOT NULL, seq int NOT NULL)"
            )
        )
    return database


@pytest_asyncio.fixture
async def producer(broker: EmbeddedBroker) -> AsyncIterator[EventProducer]:
    p = EventProducer(broker.bootstrap_servers, client_id="tests")
    await p.start()
    yield p
    await p.stop()


class RunningConsumer:
    def __init__(self, db: Database, broker: EmbeddedBroker, group: str = "tests") -> None:
        self.consumer = EventConsumer(
            database=db,
            bootstrap_servers=broker.bootstrap_servers,
            group_id=group,
            topics=[TOPIC],
            handlers={Numbered.event_type: record_effect},
            retry_delay_seconds=0.01,
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunningConsumer:
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.consumer.stop()


async def applied_rows(db: Database) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT event_id, invoice_id, seq FROM applied ORDER BY n")
        )
        return [(r.event_id, r.invoice_id, r.seq) for r in rows]


async def wait_for_applied(db: Database, count: int, within: float = 20.0) -> list[Any]:
    """Rows of ``applied`` once there are at least ``count`` (fails after ``within`` s)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = await applied_rows(db)
        if len(rows) >= count:
            return rows
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"only {len(rows)} of {count} events applied after {within} s")
        await asyncio.sleep(0.05)


async def count(db: Database, table: Any) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def commit_events(db: Database, events: Sequence[Event[Any]]) -> None:
    async with db.transaction() as session:
        for event in events:
            await add_event(session, event)


async def drain(relay: OutboxRelay) -> int:
    total = 0
    while published := await relay.publish_batch():
        total += published
    return total


async def test_event_written_in_a_transaction_reaches_the_consumer(db, broker, producer):
    event = numbered(uuid.uuid4(), 1)
    await commit_events(db, [event])

    assert await drain(OutboxRelay(db, producer)) == 1
    async with RunningConsumer(db, broker):
        rows = await wait_for_applied(db, 1)

    assert rows == [(event.id, event.data.invoice_id, 1)]
    assert await count(db, outbox) == 0, "a published event leaves the outbox"
    assert await count(db, inbox) == 1


async def test_event_delivered_twice_is_applied_once(db, broker, producer):
    event = numbered(uuid.uuid4(), 1)
    later = numbered(event.data.invoice_id, 2)
    await producer.send_many([to_record(event), to_record(event), to_record(later)])

    async with RunningConsumer(db, broker):
        rows = await wait_for_applied(db, 2)
        await asyncio.sleep(0.3)  # let a wrong second application show up if there were one

    assert [seq for _, _, seq in await applied_rows(db)] == [1, 2]
    assert rows[0][0] == event.id


async def test_event_committed_before_a_crash_is_published_after_restart(db, broker, producer):
    # The service committed its change and its event, then died before the relay ran:
    # the row waits in the outbox, and a relay started afterwards publishes it.
    event = numbered(uuid.uuid4(), 1)
    await commit_events(db, [event])
    assert await count(db, outbox) == 1

    restarted = OutboxRelay(db, producer)
    assert await drain(restarted) == 1
    async with RunningConsumer(db, broker):
        rows = await wait_for_applied(db, 1)
    assert rows[0][0] == event.id


class CrashAfterSending(EventProducer):
    """A relay's producer that dies after the broker acknowledged, before the rows are deleted."""

    async def send_many(self, records: Any) -> None:
        await super().send_many(records)
        raise RuntimeError("simulated crash between publish and delete")


async def test_crash_between_publish_and_delete_republishes_and_consumers_apply_once(db, broker):
    events = [numbered(uuid.uuid4(), 1), numbered(uuid.uuid4(), 1)]
    await commit_events(db, events)
    crashing = CrashAfterSending(broker.bootstrap_servers, client_id="crashing")
    await crashing.start()
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            await OutboxRelay(db, crashing).publish_batch()
    finally:
        await crashing.stop()
    assert await count(db, outbox) == 2, "rows stay until their publication is recorded"

    healthy = EventProducer(broker.bootstrap_servers, client_id="healthy")
    await healthy.start()
    try:
        assert await drain(OutboxRelay(db, healthy)) == 2
    finally:
        await healthy.stop()

    assert await end_offset_total(broker) == 4, "each event is on the broker twice"
    async with RunningConsumer(db, broker):
        await wait_for_applied(db, 2)
        await asyncio.sleep(0.3)
    assert sorted(e for e, _, _ in await applied_rows(db)) == sorted(e.id for e in events)


async def test_rolled_back_transaction_publishes_nothing(db, broker, producer):
    invoice = uuid.uuid4()

    class Refused(Exception):
        pass

    async def write_then_refuse() -> None:
        async with db.transaction() as session:
            await add_event(session, numbered(invoice, 1))
            raise Refused

    with pytest.raises(Refused):
        await write_then_refuse()

    assert await count(db, outbox) == 0
    await commit_events(db, [numbered(invoice, 2)])
    assert await drain(OutboxRelay(db, producer)) == 1
    async with RunningConsumer(db, broker):
        await wait_for_applied(db, 1)
        await asyncio.sleep(0.3)
    assert [seq for _, _, seq in await applied_rows(db)] == [2]
    assert await end_offset_total(broker) == 1


async def test_order_per_invoice_holds_across_many_events(db, broker, producer):
    invoices = [uuid.uuid4() for _ in range(12)]
    per_invoice = 150
    # interleaved across invoices, committed in many small transactions
    for seq in range(per_invoice):
        await commit_events(db, [numbered(invoice, seq) for invoice in invoices])

    assert await drain(OutboxRelay(db, producer, batch_size=500)) == per_invoice * len(invoices)
    async with RunningConsumer(db, broker):
        rows = await wait_for_applied(db, per_invoice * len(invoices), within=60)

    for invoice in invoices:
        seen = [seq for _, inv, seq in rows if inv == invoice]
        assert seen == list(range(per_invoice)), f"events of invoice {invoice} out of order"


async def test_the_relay_puts_each_event_on_the_broker_as_to_record_makes_it(db, broker, producer):
    events = [numbered(uuid.uuid4(), seq) for seq in range(5)]
    await commit_events(db, events)

    assert await drain(OutboxRelay(db, producer)) == len(events)

    expected = {str(event.id): to_record(event) for event in events}
    partitions = len(await producer._require().partitions_for(TOPIC))
    seen = {}
    for record in await topic_records(broker):
        ce_id = dict(record.headers)["ce_id"].decode()
        if ce_id in expected:
            seen[ce_id] = record
    assert seen.keys() == expected.keys()
    for ce_id, record in seen.items():
        assert record.key == expected[ce_id].key
        assert record.value == expected[ce_id].value
        assert sorted(record.headers) == sorted(expected[ce_id].headers)
        assert record.partition == partition_for(record.key, partitions)


async def test_a_relay_publishes_nothing_while_another_holds_the_outbox(db, producer):
    await commit_events(db, [numbered(uuid.uuid4(), 1), numbered(uuid.uuid4(), 1)])

    async with db.transaction() as other:  # another replica's relay, mid-batch
        await other.execute(select(func.pg_advisory_xact_lock(_RELAY_LOCK_KEY)))
        assert await OutboxRelay(db, producer).publish_batch() == 0
        assert await count(db, outbox) == 2

    assert await drain(OutboxRelay(db, producer)) == 2
    assert await count(db, outbox) == 0


async def test_poison_messages_are_parked_and_the_next_message_is_processed(db, broker, producer):
    good = numbered(uuid.uuid4(), 7)
    valid = to_record(good)
    headers_of = dict(valid.headers)
    invalid_payload = [(k, v) for k, v in valid.headers if k != "ce_id"] + [
        ("ce_id", str(uuid.uuid4()).encode())
    ]
    unknown_type = [(k, b"test.never_defined" if k == "ce_type" else v) for k, v in valid.headers]
    poisons = [
        KafkaRecord(TOPIC, valid.key, b"\xff not json at all", list(valid.headers)),
        KafkaRecord(TOPIC, valid.key, b'{"invoice_id": "x"}', []),
        KafkaRecord(TOPIC, valid.key, valid.value, unknown_type),
        KafkaRecord(TOPIC, valid.key, b'{"invoice_id": "not-a-uuid", "seq": 1}', invalid_payload),
    ]
    await producer.send_many([*poisons, valid])

    async with RunningConsumer(db, broker):
        rows = await wait_for_applied(db, 1)

    assert rows == [(good.id, good.data.invoice_id, 7)]
    async with db.transaction() as session:
        parked = (await session.execute(select(dead_letters).order_by(dead_letters.c.offset))).all()
    assert [row.value for row in parked] == [p.value for p in poisons], "raw bytes are kept"
    assert "unknown event type" in parked[2].error
    assert parked[2].event_type == "test.never_defined"
    assert parked[1].error.startswith("missing CloudEvents headers")
    assert "invalid test.numbered event" in parked[3].error
    assert headers_of["ce_type"] == b"test.numbered"


async def test_handler_that_keeps_failing_is_parked_without_blocking_the_partition(
    db, broker, producer
):
    calls: list[int] = []

    async def fails_on_seq_1(session: AsyncSession, event: Event[Any]) -> None:
        calls.append(event.data.seq)
        if event.data.seq == 1:
            raise ValueError("this invoice cannot be handled")
        await record_effect(session, event)

    invoice = uuid.uuid4()
    await producer.send_many([to_record(numbered(invoice, 1)), to_record(numbered(invoice, 2))])
    consumer = EventConsumer(
        database=db,
        bootstrap_servers=broker.bootstrap_servers,
        group_id="tests",
        topics=[TOPIC],
        handlers={Numbered.event_type: fails_on_seq_1},
        handler_attempts=3,
        retry_delay_seconds=0.01,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        rows = await wait_for_applied(db, 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await consumer.stop()

    assert [seq for _, _, seq in rows] == [2]
    assert calls.count(1) == 3, "retried before being parked"
    async with db.transaction() as session:
        parked = (await session.execute(select(dead_letters))).one()
    assert "this invoice cannot be handled" in parked.error
    assert await count(db, inbox) == 1, "the failed attempts left no inbox row"


async def test_offsets_are_committed_so_a_restarted_consumer_resumes_after_what_it_applied(
    db, broker, producer
):
    invoice = uuid.uuid4()
    await producer.send_many([to_record(numbered(invoice, s)) for s in range(3)])
    async with RunningConsumer(db, broker):
        await wait_for_applied(db, 3)

    await producer.send_many([to_record(numbered(invoice, s)) for s in range(3, 5)])
    async with RunningConsumer(db, broker) as restarted:
        await wait_for_applied(db, 5)
        await asyncio.sleep(0.3)
        del restarted
    # the inbox would hide re-applied events; the committed offsets mean they were not re-read
    assert await count(db, inbox) == 5
    assert await committed_total(broker, "tests") == 5


async def test_two_members_of_a_group_share_the_partitions_and_apply_each_event_once(
    db, broker, producer
):
    invoices = [uuid.uuid4() for _ in range(30)]
    await producer.send_many([to_record(numbered(i, s)) for s in range(5) for i in invoices])
    async with RunningConsumer(db, broker), RunningConsumer(db, broker):
        rows = await wait_for_applied(db, 150, within=60)
        await asyncio.sleep(0.5)
    rows = await applied_rows(db)
    assert len(rows) == 150
    assert len({event_id for event_id, _, _ in rows}) == 150


async def test_relay_woken_by_notify_publishes_without_waiting_for_the_poll(db, broker, producer):
    relay = OutboxRelay(db, producer, poll_seconds=3600)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # the relay drained the empty outbox and now sleeps for an hour
        await commit_events(db, [numbered(uuid.uuid4(), 1)])
        async with RunningConsumer(db, broker):
            await wait_for_applied(db, 1, within=15)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert relay.published == 1


async def test_relay_keeps_events_while_the_broker_is_down_and_publishes_when_it_is_back(
    db, tmp_path
):
    from relance.devstack.ports import free_port

    port = free_port()
    await commit_events(db, [numbered(uuid.uuid4(), s) for s in range(3)])
    down = EventProducer(f"127.0.0.1:{port}", client_id="tests")
    with pytest.raises(KafkaConnectionError):
        await down.start()
    assert await count(db, outbox) == 3

    back = await asyncio.to_thread(EmbeddedBroker, port, tmp_path / "broker.log")
    try:
        producer = EventProducer(back.bootstrap_servers, client_id="tests")
        await producer.start()
        try:
            assert await drain(OutboxRelay(db, producer)) == 3
        finally:
            await producer.stop()
        assert await count(db, outbox) == 0
    finally:
        await asyncio.to_thread(back.stop)


async def end_offset_total(broker: EmbeddedBroker) -> int:
    """How many messages the topic holds, counted by reading them all.

    (The embedded broker's high watermark is one short after a multi-record batch, so
    ``end_offsets`` cannot be trusted to count here.)
    """
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        total = 0
        while batch := await consumer.getmany(timeout_ms=1000):
            total += sum(len(records) for records in batch.values())
        return total
    finally:
        await consumer.stop()


async def topic_records(broker: EmbeddedBroker) -> list[Any]:
    """Every record of the topic, read from the beginning."""
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = []
        while batch := await consumer.getmany(timeout_ms=1000):
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def committed_total(broker: EmbeddedBroker, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        total = 0
        for p in consumer.partitions_for_topic(TOPIC) or ():
            total += await consumer.committed(TopicPartition(TOPIC, p)) or 0
        return total
    finally:
        await consumer.stop()


# Tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, with the SDK keeping finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


async def relay_on(session: AsyncSession, event: Event[Any]) -> None:
    """A handler that records the event and, for the first of an invoice, emits the next."""
    await record_effect(session, event)
    if event.data.seq == 1:
        await add_event(session, numbered(event.data.invoice_id, 2))


def traceparent_of(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


def ids_in(traceparent: str | None) -> tuple[int, int]:
    """The trace id and parent span id of a W3C ``traceparent``."""
    assert traceparent is not None
    _, trace_id, span_id, _ = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


async def outbox_headers(db) -> list[dict[str, str]]:
    async with db.transaction() as session:
        return [dict(row) for row in (await session.scalars(select(outbox.c.headers))).all()]


async def test_the_handling_span_is_a_child_of_the_span_that_wrote_the_event(
    db, broker, producer, spans
):
    with tracing.resumed(None, "POST /v1/invoices/{invoice_id}/send", kind=SpanKind.SERVER):
        first = numbered(uuid.uuid4(), 1)
        await commit_events(db, [first])
    [request] = spans.get_finished_spans()
    trace_id, request_span_id = traceparent_of(request)
    assert ids_in(first.traceparent) == (trace_id, request_span_id)

    assert await drain(OutboxRelay(db, producer)) == 1
    [on_broker] = await read_events(broker.bootstrap_servers, TOPIC, idle_ms=300)
    assert on_broker.traceparent == first.traceparent, "the context travels in the headers"

    consumer = EventConsumer(
        database=db,
        bootstrap_servers=broker.bootstrap_servers,
        group_id="tests",
        topics=[TOPIC],
        handlers={Numbered.event_type: relay_on},
    )
    await consumer.start()
    try:
        for record in (await consumer._consumer.getmany(timeout_ms=5000)).popitem()[1]:
            await consumer._apply(record)
    finally:
        await consumer.stop()
    await wait_for_applied(db, 1)

    handled = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    [handling] = handled
    assert handling.name == "test.numbered process"
    assert handling.parent is not None
    assert (handling.parent.trace_id, handling.parent.span_id) == (trace_id, request_span_id)
    assert handling.attributes is not None
    assert handling.attributes["messaging.destination.name"] == TOPIC
    assert handling.attributes["relance.invoice_id"] == str(first.data.invoice_id)

    # the event the handler wrote continues the same trace, from the handling span
    [follow_up] = await outbox_headers(db)
    _, handling_span_id = traceparent_of(handling)
    assert ids_in(follow_up["traceparent"]) == (trace_id, handling_span_id)


async def test_with_tracing_off_events_carry_only_the_cloudevents_headers(db):
    event = numbered(uuid.uuid4(), 1)
    assert event.traceparent is None
    await commit_events(db, [event])
    [headers] = await outbox_headers(db)
    assert "traceparent" not in headers
    assert set(headers) == {name for name, _ in to_record(event).headers}


@pytest.mark.parametrize(
    "received",
    [
        "not-a-traceparent",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
)
def test_a_malformed_traceparent_is_dropped_and_the_event_still_reads(received):
    record = to_record(numbered(uuid.uuid4(), 1))
    event = from_record([*record.headers, ("traceparent", received.encode())], record.value)
    assert event.traceparent is None
    assert event.data.seq == 1
