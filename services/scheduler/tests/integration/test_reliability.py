"""Whatever crashes, every step is fired once: a scheduler killed mid-batch, a broker away."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from relance.common.clock import FrozenClock
from relance.common.db import Database, asyncpg_dsn
from relance.common.events import TOPICS
from relance.common.events.reminder_events import TOPIC as REMINDER_EVENTS
from relance.common.kafka import EventProducer, ensure_topics
from relance.common.outbox import OutboxRelay
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.ports import free_port
from relance.devstack.testing import read_events
from relance.scheduler.workers import StepFiring

STEPS = 30_000


async def plan_due_steps(url: str, count: int, due_at: datetime) -> None:
    """``count`` invoices with one step each, all due at ``due_at``, written straight in."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        org = uuid.uuid4()
        invoices = [uuid.uuid4() for _ in range(count)]
        await connection.copy_records_to_table(
            "plans",
            records=[
                (i, org, due_at, due_at.date(), True, "FR", "Europe/Paris", due_at.time())
                for i in invoices
            ],
            columns=[
                "invoice_id", "organization_id", "sent_at", "due_date", "imported",
                "country", "timezone", "reminder_time",
            ],
        )  # fmt: skip
        await connection.copy_records_to_table(
            "steps",
            records=[
                (uuid.uuid4(), org, i, 1, "due", 2, due_at, "planned", due_at) for i in invoices
            ],
            columns=[
                "id", "organization_id", "invoice_id", "position", "kind", "severity",
                "scheduled_for", "status", "fire_at",
            ],
        )  # fmt: skip
    finally:
        await connection.close()


async def count(url: str, query: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def start_scheduler(url: str, bootstrap: str, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PORT": str(free_port()),
        "RUN_CONSUMERS": "false",
        "FIRING_BATCH_SIZE": "500",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relance.scheduler", "serve",
        env=env, stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def wait_until(url: str, query: str, predicate, within: float = 120.0) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await count(url, query)
        if predicate(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


FIRED = "SELECT count(*) FROM steps WHERE fired_at IS NOT NULL"
WAITING_IN_OUTBOX = "SELECT count(*) FROM outbox"


async def test_a_scheduler_killed_mid_batch_fires_every_step_exactly_once(
    make_database, broker, tmp_path
):
    url = await make_database("relance.scheduler")
    await plan_due_steps(url, STEPS, datetime.now(UTC) - timedelta(minutes=1))
    log = tmp_path / "scheduler.log"

    first = await start_scheduler(url, broker.bootstrap_servers, log)
    fired = await wait_until(url, FIRED, lambda n: n >= 2_000)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    fired_at_kill = await count(url, FIRED)
    assert 0 < fired < STEPS, log.read_text()[-2000:]
    assert fired_at_kill < STEPS, "the kill came too late to prove anything"

    second = await start_scheduler(url, broker.bootstrap_servers, log)
    try:
        assert await wait_until(url, FIRED, lambda n: n == STEPS) == STEPS
        assert await wait_until(url, WAITING_IN_OUTBOX, lambda n: n == 0) == 0
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()

    events = await read_events(broker.bootstrap_servers, REMINDER_EVENTS)
    ids_per_step: dict[str, set[uuid.UUID]] = defaultdict(set)
    for event in events:
        ids_per_step[str(event.data.step_id)].add(event.id)
    assert len(ids_per_step) == STEPS  # every step reached the broker
    # one reminder.due per step: a copy republished after the kill carries the same event
    # id, which the notifier's inbox drops
    assert {len(ids) for ids in ids_per_step.values()} == {1}


async def test_steps_fire_into_the_outbox_while_the_broker_is_away(make_database, tmp_path):
    url = await make_database("relance.scheduler")
    due_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    await plan_due_steps(url, 300, due_at)
    database = Database(url, pool_size=5)
    port = free_port()
    producer = EventProducer(f"127.0.0.1:{port}", client_id="test")
    relay = OutboxRelay(database, producer, poll_seconds=0.1, retry_seconds=0.2)
    broker: EmbeddedBroker | None = None

    async def publish() -> None:
        while not producer.started:
            try:
                await producer.start()
            except Exception:
                await asyncio.sleep(0.2)
        await relay.run()

    relaying = asyncio.create_task(publish())
    try:
        firing = StepFiring(database, FrozenClock(due_at), batch_size=50)
        while await firing.fire_due():
            pass
        assert await count(url, FIRED) == 300
        assert await count(url, WAITING_IN_OUTBOX) == 300  # nothing lost, nothing sent yet

        broker = await asyncio.to_thread(EmbeddedBroker, port, tmp_path / "broker.log")
        await ensure_topics(broker.bootstrap_servers, TOPICS, partitions=3)
        assert await wait_until(url, WAITING_IN_OUTBOX, lambda n: n == 0, within=60) == 0
        events = await read_events(broker.bootstrap_servers, REMINDER_EVENTS)
        assert len({event.data.step_id for event in events}) == 300
    finally:
        relaying.cancel()
        await asyncio.gather(relaying, return_exceptions=True)
        await producer.stop(give_up_after=5)
        await database.dispose()
        if broker is not None:
            await asyncio.to_thread(broker.stop)
