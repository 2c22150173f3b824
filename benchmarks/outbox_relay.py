"""Outbox relay throughput, against a bare aiokafka producer as the baseline.

On a fresh database of an embedded PostgreSQL (started in a temporary folder) and an
embedded broker on a free port (topics created with 6 partitions), ``N`` ``invoice.sent``
events are committed to the ``outbox`` table with :func:`relance.common.outbox.add_events`
(transactions of 1000), then ``OutboxRelay(database, producer, batch_size=2000)
.publish_batch()`` runs in a loop until the outbox is empty: that loop is timed. The
relay's messages are read back with a consumer (every message, and its ``ce_id`` header)
to check that all ``N`` arrived, once each.

The baseline: a bare ``AIOKafkaProducer`` with the same settings as
:class:`relance.common.kafka.EventProducer` and no database sends the same ``N`` records
(topic, key, value and headers as the relay sends them, read from the outbox before the
relay runs): once streaming them all and awaiting the acknowledgements at the end, and once
in batches of the relay's size awaited one by one (what the relay does, without its SQL).
The ratio relay/bare is what the database round trips and the relay's own work cost.

The relay loop is broken down by phase (each SQL statement timed with SQLAlchemy cursor
events, ``send_many`` timed by a subclass of the producer) and by the CPU time of this
process per event; ``--profile`` adds a cProfile of the first round (which slows that
round down). ``--repeat R`` runs R rounds, each on a fresh broker, and reports the median.
Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import shutil
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.report import figure, number, say
from relance.common.db import Database
from relance.common.events import TOPICS, Event, KafkaRecord
from relance.common.events.invoice_events import TOPIC, InvoiceSent
from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot, OrganizationSnapshot
from relance.common.kafka import EventProducer, ensure_topics
from relance.common.outbox import OutboxRelay, add_events
from relance.common.tables import outbox, platform_metadata
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.ports import free_port
from relance.devstack.postgres import EmbeddedPostgres, create_databases

TARGET_EVENTS_PER_SECOND = 10_000
DEFAULT_EVENTS = 100_000
WRITE_TRANSACTION_SIZE = 1000
RELAY_BATCH_SIZE = 2000
PARTITIONS = 6
DATABASE_NAME = "relance_bench"
WHOLE_BATCH = "publish_batch (whole)"


@dataclass
class Timing:
    """Wall time and CPU time of this process for one timed run of ``events``."""

    events: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


class Stopwatch:
    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def stop(self, events: int) -> Timing:
        return Timing(events, time.perf_counter() - self._wall, time.process_time() - self._cpu)


@dataclass
class Phases:
    """Wall time spent in each part of the relay loop, in seconds."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] += seconds
        self.counts[phase] += 1


class TimedProducer(EventProducer):
    """The relay's producer, timing each ``send_many`` (the Kafka part of a batch)."""

    def __init__(self, bootstrap_servers: str, phases: Phases) -> None:
        super().__init__(bootstrap_servers, client_id="relance-bench-relay")
        self._phases = phases

    async def send_many(self, records: Iterable[KafkaRecord]) -> None:
        started = time.perf_counter()
        try:
            await super().send_many(records)
        finally:
            self._phases.add("kafka: send_many (make records, send, await acks)", _since(started))


def _since(started: float) -> float:
    return time.perf_counter() - started


def _statement_phase(statement: str) -> str:
    text = " ".join(statement.split()).lower()
    if "pg_try_advisory_xact_lock" in text:
        return "sql: advisory lock"
    if text.startswith("select"):
        return "sql: select batch (execute, fetch, decode)"
    if text.startswith("delete"):
        return "sql: delete batch"
    return f"sql: {text[:40]}"


def _time_statements(database: Database, phases: Phases) -> Callable[[], None]:
    """Time every SQL statement of ``database`` (the await on asyncpg included); returns
    the function that stops timing."""
    sync_engine = database.engine.sync_engine

    def before(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        context._bench_started = time.perf_counter()

    def after(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        phases.add(_statement_phase(statement), _since(context._bench_started))

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)

    def stop() -> None:
        event.remove(sync_engine, "before_cursor_execute", before)
        event.remove(sync_engine, "after_cursor_execute", after)

    return stop


def make_events(count: int) -> Iterator[Event[InvoiceSent]]:
    """``count`` realistic ``invoice.sent`` events, one invoice each (keys spread evenly)."""
    organization = OrganizationSnapshot(
        id=uuid.uuid4(), name="Atelier Dupont SARL", sender_email="compta@atelier-dupont.fr"
    )
    customer = CustomerSnapshot(
        id=uuid.uuid4(),
        name="Boulangerie Martin",
        email="factures@boulangerie-martin.fr",
        locale="fr",
        ibans=("FR7630006000011234567890189",),
    )
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    for index in range(count):
        total = Decimal(1000 + index % 5000) + Decimal("0.50")
        invoice = InvoiceSnapshot(
            number=f"F-2026-{index:06d}",
            currency="EUR",
            total=total,
            paid=Decimal("0.00"),
            balance=total,
            issue_date=date(2026, 11, 20),
            due_date=date(2026, 11, 20) + timedelta(days=30),
            sent_at=now,
            payment_reference=f"RF18{index:010d}",
        )
        data = InvoiceSent(
            invoice_id=uuid.uuid4(), organization=organization, customer=customer, invoice=invoice
        )
        yield Event.new(data, source="invoice-api", organization_id=organization.id, time=now)


@dataclass
class Round:
    """What one round measured."""

    fill: Timing
    relay: Timing
    batches: int
    phases: Phases
    bare_stream: Timing
    bare_batched: Timing
    delivered: bool
    profile: str | None = None

    def ratio(self) -> float:
        return self.relay.rate / self.bare_stream.rate


async def _create_schema(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(platform_metadata.create_all)
    finally:
        await engine.dispose()


async def _fill_outbox(database: Database, events: list[Event[Any]]) -> Timing:
    watch = Stopwatch()
    for start in range(0, len(events), WRITE_TRANSACTION_SIZE):
        async with database.transaction() as session:
            await add_events(session, events[start : start + WRITE_TRANSACTION_SIZE])
    return watch.stop(len(events))


async def _outbox_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)


async def _outbox_records(database: Database) -> list[KafkaRecord]:
    """The records the relay will send, made from the outbox rows as the relay makes them."""
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers).order_by(
                    outbox.c.id
                )
            )
        ).all()
    return [
        KafkaRecord(
            topic=row.topic,
            key=row.key,
            value=row.value,
            headers=[(name, value.encode()) for name, value in row.headers.items()],
        )
        for row in rows
    ]


async def _run_relay(
    database: Database, bootstrap: str, *, profile: bool
) -> tuple[Timing, int, Phases, str | None]:
    phases = Phases()
    producer = TimedProducer(bootstrap, phases)
    await producer.start()
    try:
        relay = OutboxRelay(database, producer, batch_size=RELAY_BATCH_SIZE)
        profiler = cProfile.Profile() if profile else None
        stop_timing = _time_statements(database, phases)
        batches = 0
        watch = Stopwatch()
        if profiler is not None:
            profiler.enable()
        while True:
            batch_started = time.perf_counter()
            published = await relay.publish_batch()
            phases.add(WHOLE_BATCH, _since(batch_started))
            if published == 0:
                break
            batches += 1
        timing = watch.stop(relay.published)
        if profiler is not None:
            profiler.disable()
        stop_timing()
    finally:
        await producer.stop()
    report = _format_profile(profiler) if profiler is not None else None
    return timing, batches, phases, report


def _format_profile(profiler: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def _bare_producer(bootstrap: str) -> AIOKafkaProducer:
    """The same settings as :class:`EventProducer`."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="relance-bench-bare",
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
    )


async def _run_bare(bootstrap: str, records: list[KafkaRecord], batch_size: int | None) -> Timing:
    """Send ``records``, awaiting the acknowledgements after each ``batch_size`` records
    (None: only at the end); every one must be acknowledged."""
    producer = _bare_producer(bootstrap)
    await producer.start()
    try:
        step = batch_size or len(records)
        watch = Stopwatch()
        for start in range(0, len(records), step):
            futures = [
                await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                for r in records[start : start + step]
            ]
            await asyncio.gather(*futures)
        return watch.stop(len(records))
    finally:
        await producer.stop()


@dataclass
class ReadBack:
    messages: int
    ids: set[str]
    highwater: int  # sum over partitions, from the fetch responses
    end_offsets: int  # sum over partitions, from ListOffsets


async def _read_back(bootstrap: str, topic: str) -> ReadBack:
    """Read every message now on ``topic`` from the beginning; keep each ``ce_id``.

    It counts by reading, not by ``end_offsets``: the embedded broker answers ListOffsets
    (latest) short of the real end after multi-record batches, while the high watermark of
    its fetch responses is right.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        ids: set[str] = set()
        messages = 0
        idle_polls = 0
        deadline = time.monotonic() + 300
        while idle_polls < 2 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            received = sum(len(batch) for batch in batches.values())
            idle_polls = 0 if received else idle_polls + 1
            messages += received
            for batch in batches.values():
                for message in batch:
                    ids.update(v.decode() for k, v in message.headers if k == "ce_id")
        highwater = sum(consumer.highwater(tp) or 0 for tp in partitions)
        return ReadBack(messages, ids, highwater, sum(end_offsets.values()))
    finally:
        await consumer.stop()


async def _round(
    database_url: str,
    bootstrap: str,
    events: list[Event[Any]],
    bare_records: list[KafkaRecord],
    *,
    profile: bool,
) -> Round:
    """Fill the outbox, relay it, check what arrived, then the bare baselines."""
    count = len(events)
    expected_ids = {str(e.id) for e in events}
    await ensure_topics(bootstrap, TOPICS, PARTITIONS)
    database = Database(database_url, pool_size=2)
    try:
        fill = await _fill_outbox(database, events)
        say(
            f"outbox written: {number(count)} events in {fill.seconds:.1f} s "
            f"({number(fill.rate)} events/s, transactions of {WRITE_TRANSACTION_SIZE}; "
            "not a target)"
        )
        if not bare_records:
            bare_records.extend(await _outbox_records(database))
        relay, batches, phases, report = await _run_relay(database, bootstrap, profile=profile)
        left = await _outbox_count(database)
    finally:
        await database.dispose()

    back = await _read_back(bootstrap, TOPIC)
    delivered = back.messages == count and back.ids == expected_ids and left == 0
    say(
        f"relay: {number(relay.events)} events in {relay.seconds:.2f} s = "
        f"{number(relay.rate)} events/s, {relay.cpu_us_per_event:.0f} µs CPU of this process "
        f"per event (busy {relay.cpu_seconds / relay.seconds:.0%} of the time), {batches} "
        f"batches of up to {RELAY_BATCH_SIZE}" + (" (under cProfile: slower)" if profile else "")
    )
    say(
        f"read back: {number(back.messages)} messages on {TOPIC} (high watermark "
        f"{number(back.highwater)}; ListOffsets says {number(back.end_offsets)}), "
        f"{number(len(back.ids & expected_ids))} of {number(count)} event ids, "
        f"{number(len(back.ids - expected_ids))} unknown, {left} rows left in the outbox: "
        + ("all arrived, once each" if delivered else "MISSING OR EXTRA EVENTS")
    )

    stream = await _run_bare(bootstrap, bare_records, None)
    batched = await _run_bare(bootstrap, bare_records, RELAY_BATCH_SIZE)
    say(
        f"bare aiokafka, streaming: {number(stream.rate)} events/s "
        f"({stream.seconds:.2f} s, {stream.cpu_us_per_event:.0f} µs CPU per event); "
        f"in batches of {RELAY_BATCH_SIZE} awaited one by one: {number(batched.rate)} "
        f"events/s ({batched.seconds:.2f} s, {batched.cpu_us_per_event:.0f} µs CPU per event); "
        "all acknowledged"
    )
    _print_phases(relay, phases)
    return Round(fill, relay, batches, phases, stream, batched, delivered, report)


def _print_phases(relay: Timing, phases: Phases) -> None:
    total = relay.seconds
    say(f"where the relay loop's {total:.2f} s go (wall time):")
    measured = 0.0
    for phase, seconds in sorted(phases.seconds.items(), key=lambda kv: -kv[1]):
        if phase == WHOLE_BATCH:
            continue
        measured += seconds
        calls = phases.counts[phase]
        say(f"  {phase:<54} {seconds:6.2f} s {seconds / total:6.1%}  ({calls} calls)")
    rest = phases.seconds[WHOLE_BATCH] - measured
    label = "the rest: sessions, commits, SQL compilation, metrics"
    say(f"  {label:<54} {rest:6.2f} s {rest / total:6.1%}")


def _summary(rounds: list[Round], count: int) -> bool:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    def spread(values: list[float]) -> str:
        if len(values) == 1:
            return ""
        return f" [{number(min(values))}..{number(max(values))}]"

    relay = [r.relay.rate for r in rounds]
    stream = [r.bare_stream.rate for r in rounds]
    batched = [r.bare_batched.rate for r in rounds]
    ratios = [r.ratio() for r in rounds]
    relay_rate = median(relay)
    of = f"median of {len(rounds)} rounds, " if len(rounds) > 1 else ""
    detail = (
        f"{of}bare aiokafka {number(median(stream))}{spread(stream)} events/s, "
        f"ratio {median(ratios):.2f}; bare in awaited batches of {RELAY_BATCH_SIZE} "
        f"{number(median(batched))} events/s"
    )
    print(
        figure(
            "outbox relay",
            f"{number(relay_rate)}{spread(relay)} events/s",
            f">= {number(TARGET_EVENTS_PER_SECOND)}",
            relay_rate >= TARGET_EVENTS_PER_SECOND,
            detail,
        ),
        flush=True,
    )
    print(
        f"outbox relay CPU: {median([r.relay.cpu_us_per_event for r in rounds]):.0f} µs per "
        f"event in the relay's process (bare aiokafka "
        f"{median([r.bare_stream.cpu_us_per_event for r in rounds]):.0f} µs)",
        flush=True,
    )
    delivered = all(r.delivered for r in rounds)
    print(
        f"outbox relay delivery: all {number(count)} events read back from the topic, once "
        f"each, in {'every round' if len(rounds) > 1 else 'the run'}: "
        + ("OK" if delivered else "FAILED"),
        flush=True,
    )
    return delivered


def run(count: int = DEFAULT_EVENTS, *, repeat: int = 1, profile: bool = False) -> bool:
    """Run the benchmark and print its figures; False if the relay lost or added events."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"== outbox relay: {number(count)} events, {repeat} round(s), "
        f"{os.cpu_count()} CPUs, load average {load} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-relay-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}")
        watch = Stopwatch()
        events = list(make_events(count))
        say(f"{number(count)} invoice.sent events made in {watch.stop(count).seconds:.1f} s")
        bare_records: list[KafkaRecord] = []
        rounds: list[Round] = []
        for index in range(repeat):
            name = f"{DATABASE_NAME}_{index + 1}"
            asyncio.run(create_databases(postgres.dsn(), [name]))
            url = postgres.url(name)
            asyncio.run(_create_schema(url))
            broker = EmbeddedBroker(free_port(), workdir / f"broker-{index + 1}.log")
            try:
                say(
                    f"round {index + 1}: new database {name}, new broker on "
                    f"{broker.bootstrap_servers}"
                )
                rounds.append(
                    asyncio.run(
                        _round(
                            url,
                            broker.bootstrap_servers,
                            events,
                            bare_records,
                            profile=profile and index == 0,
                        )
                    )
                )
            finally:
                broker.stop()
            if index == 0:
                size = sum(
                    len(r.value) + len(r.key) + sum(len(k) + len(v) for k, v in r.headers)
                    for r in bare_records
                )
                say(f"average record: {size / count:,.0f} bytes (value, key and headers)")
        if rounds[0].profile is not None:
            print(rounds[0].profile, flush=True)
        return _summary(rounds, count)
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
