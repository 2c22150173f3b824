"""The scheduler's firing: a burst of due steps to the broker, against PGQueuer, and the lag.

Everything runs on an embedded PostgreSQL started in a temporary folder (its default
settings, fsync on, as ``make dev`` runs it) and an embedded broker on a free port per round
(topics created with 6 partitions).

``firing``: a template database migrated by the scheduler's alembic revisions holds the
plans and steps loaded with ``INSERT ... SELECT generate_series`` (then ``VACUUM ANALYZE``):
one plan per invoice, 6 steps each (issuance, pre_due, due and three escalations). The
invoices of the burst (100,000 by default) have their issuance and pre_due sent and their
three escalations planned weeks ahead; 140,000 more invoices have their issuance sent and 5
steps planned over the next months: 1,000,000 steps planned in the future in all, with
``fire_at = scheduled_for``. Each round copies the template (``CREATE DATABASE ... TEMPLATE``),
starts a new broker and the real service (``relance.common.service.main`` with the
scheduler's spec, ``serve``, in a child process: uvicorn, the outbox relay and the firing
loop in one process as in production; consumers off; uvloop hidden, as a production install
has none), then inserts the due step of each burst invoice, all at the same instant ``T0`` a
few seconds ahead, and ANALYZEs. The firing loop sleeps until ``T0``. Timed: from ``T0``
until no step is due any more and the outbox is empty (polled every 20 ms on the database:
the relay deletes rows only once the broker acknowledged them, so by then every
``reminder.due`` is on the broker). Then the topic is read from the beginning and every due
step id must be there exactly once. The resident memory of the service process is sampled
from ``/proc/<pid>/status`` (VmRSS, VmHWM) every 50 ms, and the CPU time of the service,
PostgreSQL and the broker over the burst says where the two cores go. Rounds try several
firing/outbox batch sizes (``--batches F:O``); ``--profile`` records the service with py-spy
during the burst and prints where its time goes.

Then, on the same server: the claim statement alone (``repository.claim_due_steps`` in a
loop, one transaction per batch, no events, no outbox) on a fresh copy of the same data,
after ``EXPLAIN (ANALYZE, BUFFERS)`` of it with the 1,000,000 future steps present; and
PGQueuer (``pgqueuer``, a job queue on PostgreSQL and asyncpg) in its own database: its
schema installed, 100,000 jobs due now enqueued in batches, then ``QueueManager`` workers
with an entrypoint that does nothing drain them (``mode=drain``), timed, with a few worker
counts and batch sizes.

``firing-lag``: the service as above on a copy of the template; steps due at a steady 200 a
second over 30 seconds, starting a few seconds after it is ready; the topic is read live in
this process and each ``reminder.due``'s lag is its arrival (and its record timestamp, set
by the relay's producer) minus its ``scheduled_for``.

Figures are printed, never asserted: the machines are shared and noisy. The run fails (exit
1) only when something is wrong: a step missing or published twice, a job not run, a service
that does not start.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.invoice_api import PostgresCpu, load_average, percentile, postmaster_pid
from benchmarks.report import figure, number, say
from benchmarks.stack import process_cpu, stop_child, wait_for_answer
from relance.common.db import Database
from relance.common.events import TOPICS
from relance.common.events.reminder_events import TOPIC
from relance.common.kafka import ensure_topics
from relance.common.migrations import upgrade
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.ports import free_port
from relance.devstack.postgres import EmbeddedPostgres, create_databases
from relance.scheduler import repository as repo
from relance.scheduler.settings import SchedulerSettings

TARGET_STEPS_PER_SECOND = 10_000  # 100,000 due steps on the broker in 10 s
TARGET_RATIO_PGQUEUER = 1.5
TARGET_LAG_P99_SECONDS = 1.0
TARGET_RSS_MB = 200.0
DEFAULT_DUE = 100_000
DEFAULT_FUTURE = 1_000_000
DEFAULT_LAG_RATE = 200
DEFAULT_LAG_SECONDS = 30
# (firing batch, outbox batch): the service's defaults first
DEFAULT_BATCHES = (
    (
        SchedulerSettings.model_fields["firing_batch_size"].default,
        SchedulerSettings.model_fields["outbox_batch_size"].default,
    ),
    (2000, 5000),
    (500, 2000),
)
# (workers, batch size) of the PGQueuer consumers
PGQUEUER_CONFIGS = ((1, 1000), (2, 500), (4, 250))
PGQUEUER_ENQUEUE_BATCH = 5000
PARTITIONS = 6
ORGANIZATIONS = 200
LATER_STEPS = 3  # escalations planned after the due step of each burst invoice
STEPS_PER_OTHER_INVOICE = 5  # planned steps of each other invoice (its issuance was sent)
LEAD_SECONDS = 8.0  # from the due steps' insertion to T0
LAG_LEAD_SECONDS = 3.0
POLL_SECONDS = 0.02
SAMPLE_SECONDS = 0.05
PY_SPY_RATE = 200
BURST_TIMEOUT_SECONDS = 300.0
TEMPLATE = "relance_bench_scheduler_template"
PGQUEUER_DATABASE = "relance_bench_pgqueuer"
ENTRYPOINT = "noop"
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
# the real service's command line, with uvloop hidden: a production install has none (it
# comes into the development environment with pgqueuer), and uvicorn takes it when present
SERVE = (
    "import sys; sys.modules['uvloop'] = None; "
    "from relance.common.service import main; from relance.scheduler.app import SPEC; "
    "raise SystemExit(main(SPEC, ['serve']))"
)


@dataclass(frozen=True)
class Options:
    due: int = DEFAULT_DUE
    future: int = DEFAULT_FUTURE
    batches: tuple[tuple[int, int], ...] = DEFAULT_BATCHES
    repeat: int = 1
    lag_rate: int = DEFAULT_LAG_RATE
    lag_seconds: int = DEFAULT_LAG_SECONDS
    uvloop: bool = False
    profile: bool = False

    @property
    def other_invoices(self) -> int:
        return max(0, self.future - LATER_STEPS * self.due) // STEPS_PER_OTHER_INVOICE

    @property
    def future_steps(self) -> int:
        return LATER_STEPS * self.due + STEPS_PER_OTHER_INVOICE * self.other_invoices


def parse_batches(text: str) -> tuple[int, int]:
    """``"1000:2000"`` → (firing batch, outbox batch)."""
    firing, _, outbox = text.partition(":")
    pair = (int(firing), int(outbox or firing))
    if min(pair) <= 0 or pair[0] > 10_000:
        raise ValueError(f"batch sizes must be positive (firing at most 10,000): {text}")
    return pair


# The data

# The parameters of the loading statements: $1 now, $2 burst invoices, $3 other invoices,
# $4 organizations (the steps are spread over them).
LOAD_PLANS = """
INSERT INTO plans (invoice_id, organization_id, sent_at, due_date, imported, country,
                   timezone, reminder_time, updated_at)
SELECT md5('invoice-' || i)::uuid, md5('organization-' || i % $4::int)::uuid,
       CASE WHEN i < $2::int THEN now.at - interval '30 days'
            ELSE now.at - make_interval(days => i % 20) END - make_interval(secs => i % 3600),
       CASE WHEN i < $2::int THEN now.at::date
            ELSE (now.at + make_interval(days => 30 + i % 60))::date END,
       false, 'FR', 'Europe/Paris', '09:00', now.at
FROM (SELECT $1::timestamptz AS at) AS now
CROSS JOIN generate_series(0, $2::int + $3::int - 1) AS i
"""

# Every step but the due one of each burst invoice (inserted by each round, at T0). Burst
# invoices (i < $2): issuance and pre_due sent, escalations 7, 14, 21 days ahead. The others:
# issuance sent, then 5 steps a week apart from 1 to 60 days ahead. fire_at = scheduled_for
# for planned steps, NULL for sent ones, as the service keeps it.
LOAD_STEPS = """
INSERT INTO steps (id, organization_id, invoice_id, position, kind, severity, scheduled_for,
                   status, fire_at, fired_at, sent_at)
SELECT md5('step-' || i || '-' || kinds.position)::uuid,
       md5('organization-' || i % $4::int)::uuid, md5('invoice-' || i)::uuid,
       kinds.position, kinds.kind, kinds.severity, step.at,
       CASE WHEN step.past THEN 'sent' ELSE 'planned' END,
       CASE WHEN step.past THEN NULL ELSE step.at END,
       CASE WHEN step.past THEN step.at END,
       CASE WHEN step.past THEN step.at + interval '2 minutes' END
FROM (SELECT $1::timestamptz AS at, $2::int AS burst) AS now
CROSS JOIN generate_series(0, $2::int + $3::int - 1) AS i
CROSS JOIN (
    VALUES (0, 'issuance', 0), (1, 'pre_due', 1), (2, 'due', 2),
           (3, 'escalation_1', 3), (4, 'escalation_2', 4), (5, 'escalation_3', 5)
) AS kinds(position, kind, severity)
CROSS JOIN LATERAL (
    SELECT
        CASE
            WHEN i < now.burst AND kinds.position = 0 THEN now.at - interval '30 days'
            WHEN i < now.burst AND kinds.position = 1 THEN now.at - interval '15 days'
            WHEN i < now.burst
                THEN now.at + make_interval(days => 7 * (kinds.position - 2), secs => i % 3600)
            WHEN kinds.position = 0
                THEN now.at - make_interval(days => i % 20, secs => i % 3600)
            ELSE now.at + make_interval(days => 1 + i % 60 + 7 * (kinds.position - 1),
                                        secs => i % 3600)
        END AS at,
        kinds.position < 2 AND i < now.burst OR kinds.position = 0 AS past
) AS step
WHERE NOT (i < now.burst AND kinds.position = 2)
"""

# $1 T0, $2 burst invoices, $3 organizations
INSERT_DUE = """
INSERT INTO steps (id, organization_id, invoice_id, position, kind, severity, scheduled_for,
                   status, fire_at)
SELECT md5('step-' || i || '-2')::uuid, md5('organization-' || i % $3::int)::uuid,
       md5('invoice-' || i)::uuid, 2, 'due', 2, $1::timestamptz, 'planned', $1::timestamptz
FROM generate_series(0, $2::int - 1) AS i
"""

# one plan per invoice, its only step due at $1 + i / $4 seconds ($2 steps, $3 organizations)
INSERT_LAG_PLANS = """
INSERT INTO plans (invoice_id, organization_id, sent_at, due_date, imported, country,
                   timezone, reminder_time, updated_at)
SELECT md5('lag-invoice-' || i)::uuid, md5('organization-' || i % $3::int)::uuid,
       now.at - interval '30 days', now.at::date, false, 'FR', 'Europe/Paris', '09:00', now.at
FROM (SELECT $1::timestamptz AS at) AS now
CROSS JOIN generate_series(0, $2::int - 1) AS i
"""
INSERT_LAG_STEPS = """
INSERT INTO steps (id, organization_id, invoice_id, position, kind, severity, scheduled_for,
                   status, fire_at)
SELECT md5('lag-step-' || i)::uuid, md5('organization-' || i % $3::int)::uuid,
       md5('lag-invoice-' || i)::uuid, 0, 'due', 2, step.at, 'planned', step.at
FROM generate_series(0, $2::int - 1) AS i
CROSS JOIN LATERAL (
    SELECT $1::timestamptz + make_interval(secs => i / $4::float8) AS at
) AS step
"""

DONE_QUERY = """
SELECT EXISTS (SELECT 1 FROM steps WHERE fire_at <= $1) AS due,
       (SELECT id FROM outbox ORDER BY id LIMIT 1) IS NOT NULL AS queued
"""


async def build_template(dsn: str, options: Options) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            arguments = (now, options.due, options.other_invoices, ORGANIZATIONS)
            await connection.execute(LOAD_PLANS, *arguments)
            await connection.execute(LOAD_STEPS, *arguments)
        loaded = time.perf_counter() - started
        await connection.execute("VACUUM ANALYZE")
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM plans) AS plans, count(*) AS steps, "
            "count(fire_at) AS planned FROM steps"
        )
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
        say(
            f"template: {number(counts['plans'])} plans, {number(counts['steps'])} steps of "
            f"which {number(counts['planned'])} planned in the future (1 to 81 days ahead), "
            f"loaded in {loaded:.1f} s, VACUUM ANALYZE {time.perf_counter() - started - loaded:.1f}"
            f" s; {size / MB:,.0f} MB"
        )
    finally:
        await connection.close()


async def copy_template(server_dsn: str, name: str) -> float:
    connection = await asyncpg.connect(server_dsn)
    try:
        started = time.perf_counter()
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(
            f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY = FILE_COPY'
        )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def drop_database(server_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def insert_due(dsn: str, at: datetime, count: int) -> set[uuid.UUID]:
    """The due step of each burst invoice, all at ``at``; returns their ids."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(INSERT_DUE, at, count, ORGANIZATIONS)
        await connection.execute("ANALYZE steps")
        rows = await connection.fetch("SELECT id FROM steps WHERE fire_at = $1", at)
        return {row["id"] for row in rows}
    finally:
        await connection.close()


# The service, in a child process


@dataclass
class Sample:
    at: float
    rss: int
    hwm: int


class MemorySampler:
    """Reads VmRSS and VmHWM of a process every ``SAMPLE_SECONDS`` in a thread."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def read(self) -> Sample | None:
        try:
            text = self._path.read_text()
        except OSError:
            return None
        values = dict(
            (line.split(":")[0], int(line.split()[1]) * 1024)
            for line in text.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        )
        return Sample(time.monotonic(), values.get("VmRSS", 0), values.get("VmHWM", 0))

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.read()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(SAMPLE_SECONDS)

    def peak_between(self, start: float, end: float) -> int:
        return max((s.rss for s in self.samples if start <= s.at <= end), default=0)

    def last_before(self, moment: float) -> int:
        before = [s.rss for s in self.samples if s.at < moment]
        return before[-1] if before else 0


class Service:
    """The scheduler (HTTP, outbox relay, firing loop) in a child process, on a free port."""

    def __init__(
        self,
        database_url: str,
        bootstrap: str,
        firing_batch: int,
        outbox_batch: int,
        log_path: Path,
        *,
        uvloop: bool,
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FIRING_", "OUTBOX_", "RUN_", "DATABASE_", "KAFKA_"))
        }
        environ.update(
            DATABASE_URL=database_url,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            HOST="127.0.0.1",
            PORT=str(self.port),
            RUN_CONSUMERS="false",
            FIRING_BATCH_SIZE=str(firing_batch),
            OUTBOX_BATCH_SIZE=str(outbox_batch),
        )
        command = (
            [sys.executable, "-m", "relance.scheduler", "serve"]
            if uvloop
            else [sys.executable, "-c", SERVE]
        )
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.psutil = psutil.Process(self.process.pid)

    async def wait_ready(self) -> None:
        await wait_for_answer(
            self.process, f"http://127.0.0.1:{self.port}/readyz", "the scheduler", self.log_path
        )

    def cpu_seconds(self) -> float:
        return process_cpu(self.psutil)

    def stop(self) -> None:
        stop_child(self.process, self._log)


class PySpy:
    """``py-spy record`` of a process, in raw (collapsed stacks) format, until stopped."""

    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(PY_SPY_RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# py-spy names files from their package: "(sqlalchemy/engine/result.py:987)"
COMPONENTS = (
    ("(sqlalchemy/", "SQLAlchemy"),
    ("(asyncpg/", "asyncpg"),
    ("(aiokafka/", "aiokafka"),
    ("(pydantic", "pydantic"),
    ("(json/", "json"),
    ("(uuid.py", "uuid"),
    ("(common/events/", "relance.common.events"),
    ("(common/outbox.py", "relance.common.outbox"),
    ("(common/kafka.py", "relance.common.kafka"),
    ("(common/partitioning.py", "relance.common.partitioning"),
    ("(scheduler/", "relance.scheduler"),
    ("(asyncio/", "asyncio"),
    ("(selectors.py", "asyncio"),
)
TASKS = (
    ("fire_due (scheduler/workers.py", "firing loop (StepFiring.fire_due)"),
    ("publish_batch (common/outbox.py", "outbox relay (OutboxRelay.publish_batch)"),
)


def print_profile(path: Path, seconds: float, rate: int) -> None:
    """Where the samples are: by task (firing or relay), by library (of the innermost frame
    that belongs to one) and by innermost function."""
    functions: Counter[str] = Counter()
    components: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        functions[frames[-1]] += count
        components[_first_match(frames, COMPONENTS)] += count
        tasks[_first_match(frames, TASKS, "the event loop and I/O callbacks")] += count
    if not total:
        say("py-spy recorded nothing")
        return
    say(
        f"py-spy ({rate} Hz, {number(total)} samples of the service's thread over "
        f"{seconds:.1f} s: busy {total / (rate * seconds):.0%} of the time); the samples:"
    )
    for name, count in tasks.most_common():
        say(f"    {count / total:6.1%}  {name}")
    say("  by library of the innermost frame that belongs to one:")
    for name, count in components.most_common(14):
        say(f"    {count / total:6.1%}  {name}")
    say("  innermost functions:")
    for name, count in functions.most_common(20):
        say(f"    {count / total:6.1%}  {name}")


def _first_match(
    frames: list[str], needles: Sequence[tuple[str, str]], default: str = "other"
) -> str:
    for frame in reversed(frames):
        for needle, name in needles:
            if needle in frame:
                return name
    return default


# Figure 1: the burst


@dataclass
class Burst:
    firing_batch: int
    outbox_batch: int
    due: int
    seconds: float
    claimed_seconds: float  # until no step was due any more
    last_record_seconds: float  # the newest record's timestamp on the topic - T0
    woke_after: float  # the first fired_at - T0
    ok: bool
    service_cpu: float
    postgres_cpu: float
    broker_cpu: float
    idle_rss: int
    peak_rss: int
    hwm: int
    load: str

    @property
    def rate(self) -> float:
        return self.due / self.seconds

    def line(self) -> str:
        return (
            f"firing {self.firing_batch}, outbox {self.outbox_batch}: "
            f"{self.seconds:.2f} s = {number(self.rate)} steps/s (all claimed after "
            f"{self.claimed_seconds:.2f} s, newest record stamped {self.last_record_seconds:.2f}"
            f" s after T0, first claim {self.woke_after * 1000:.0f} ms after T0); CPU: service "
            f"{self.service_cpu:.1f} s ({self.service_cpu / self.seconds:.0%} of a core), "
            f"PostgreSQL {self.postgres_cpu:.1f} s, broker {self.broker_cpu:.1f} s; RSS idle "
            f"{self.idle_rss / MB:.0f} MB, peak {self.peak_rss / MB:.0f} MB (VmHWM "
            f"{self.hwm / MB:.0f} MB); load average at start {self.load}"
        )


@dataclass
class Delivery:
    messages: int
    due_events: int
    distinct: int
    duplicated: int
    missing: int
    unknown: int
    newest_timestamp: float  # seconds since the epoch

    @property
    def ok(self) -> bool:
        return self.duplicated == 0 and self.missing == 0 and self.unknown == 0


async def read_topic(bootstrap: str, expected: set[uuid.UUID]) -> Delivery:
    """Read every message now on the topic from the beginning; check the reminder.due ones."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * MB,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: Counter[uuid.UUID] = Counter()
        messages = 0
        newest = 0
        idle_polls = 0
        deadline = time.monotonic() + 300
        while idle_polls < 3 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            received = sum(len(batch) for batch in batches.values())
            idle_polls = 0 if received else idle_polls + 1
            messages += received
            for batch in batches.values():
                for message in batch:
                    if ("ce_type", b"reminder.due") not in message.headers:
                        continue
                    seen[uuid.UUID(json.loads(message.value)["step_id"])] += 1
                    newest = max(newest, message.timestamp)
    finally:
        await consumer.stop()
    return Delivery(
        messages=messages,
        due_events=sum(seen.values()),
        distinct=len(seen),
        duplicated=sum(1 for n in seen.values() if n > 1),
        missing=len(expected - seen.keys()),
        unknown=len(seen.keys() - expected),
        newest_timestamp=newest / 1000,
    )


def broker_process() -> psutil.Process | None:
    """The newest broker this process started (the round's)."""
    children = [
        child for child in psutil.Process().children() if "broker" in " ".join(child.cmdline()[1:2])
    ]
    return children[-1] if children else None


async def run_burst(
    postgres: EmbeddedPostgres,
    workdir: Path,
    options: Options,
    firing_batch: int,
    outbox_batch: int,
    index: int,
) -> Burst:
    name = f"relance_bench_scheduler_{index}"
    server_dsn = postgres.dsn()
    copied = await copy_template(server_dsn, name)
    url, dsn = postgres.url(name), postgres.dsn(name)
    broker = EmbeddedBroker(free_port(), workdir / f"broker-{index}.log")
    service: Service | None = None
    try:
        await ensure_topics(broker.bootstrap_servers, TOPICS, PARTITIONS)
        load = load_average()
        service = Service(
            url,
            broker.bootstrap_servers,
            firing_batch,
            outbox_batch,
            workdir / f"scheduler-{index}.log",
            uvloop=options.uvloop,
        )
        sampler = MemorySampler(service.process.pid)
        sampler.start()
        await service.wait_ready()
        t0 = (datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)).replace(microsecond=0)
        expected = await insert_due(dsn, t0, options.due)
        ahead = (t0 - datetime.now(UTC)).total_seconds()
        say(
            f"round {index}: database copied from the template in {copied:.1f} s, broker on "
            f"{broker.bootstrap_servers}, scheduler ready (pid {service.process.pid}, firing "
            f"batch {firing_batch}, outbox batch {outbox_batch}); {number(len(expected))} steps "
            f"due at {t0:%H:%M:%S}, {ahead:.1f} s ahead"
        )
        if ahead < 1.0:
            raise RuntimeError("the due steps were inserted too late: raise LEAD_SECONDS")
        postgres_cpu = PostgresCpu(await postmaster_pid(server_dsn))
        broker_ps = broker_process()
        connection = await asyncpg.connect(dsn)
        profiler: PySpy | None = None
        try:
            await asyncio.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds() - 0.5))
            if options.profile:
                profiler = PySpy(service.process.pid, workdir / f"py-spy-{index}.txt")
            cpu = (
                service.cpu_seconds(),
                postgres_cpu.seconds(),
                broker_ps.cpu_times().user + broker_ps.cpu_times().system if broker_ps else 0.0,
            )
            await asyncio.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds()))
            start_wall = time.time()
            start = time.monotonic()
            claimed_at: float | None = None
            while True:
                row = await connection.fetchrow(DONE_QUERY, t0)
                now = time.monotonic()
                if not row["due"] and claimed_at is None:
                    claimed_at = now
                if not row["due"] and not row["queued"]:
                    break
                if now - start > BURST_TIMEOUT_SECONDS:
                    raise RuntimeError(f"not done after {BURST_TIMEOUT_SECONDS:.0f} s")
                await asyncio.sleep(POLL_SECONDS)
            end = time.monotonic()
            used = (
                service.cpu_seconds() - cpu[0],
                postgres_cpu.seconds() - cpu[1],
                (broker_ps.cpu_times().user + broker_ps.cpu_times().system if broker_ps else 0.0)
                - cpu[2],
            )
            if profiler is not None:
                profiler.stop()
            first_fired = await connection.fetchval(
                "SELECT min(fired_at) FROM steps WHERE scheduled_for = $1", t0
            )
            fired, skipped, still_planned = await connection.fetchrow(
                "SELECT count(fired_at), count(*) FILTER (WHERE status = 'skipped'), "
                "(SELECT count(*) FROM steps WHERE fire_at IS NOT NULL) FROM steps "
                "WHERE scheduled_for = $1",
                t0,
            )
        finally:
            await connection.close()
        hwm = sampler.read()
        sampler.stop()
        service.stop()
        delivery = await read_topic(broker.bootstrap_servers, expected)
        ok = (
            delivery.ok
            and fired == len(expected)
            and skipped == 0
            and still_planned == options.future_steps
        )
        say(
            f"  read back: {number(delivery.messages)} messages on {TOPIC}, "
            f"{number(delivery.due_events)} reminder.due for {number(delivery.distinct)} steps: "
            f"{number(delivery.missing)} missing, {number(delivery.duplicated)} twice, "
            f"{number(delivery.unknown)} unknown; in the database {number(fired)} fired, "
            f"{skipped} skipped, {number(still_planned)} still planned in the future: "
            + ("every step once" if ok else "WRONG")
        )
        if profiler is not None:
            print_profile(profiler.output, end - start + 0.5, PY_SPY_RATE)
        return Burst(
            firing_batch=firing_batch,
            outbox_batch=outbox_batch,
            due=len(expected),
            seconds=end - start,
            claimed_seconds=(claimed_at or end) - start,
            last_record_seconds=delivery.newest_timestamp - start_wall,
            woke_after=(first_fired - t0).total_seconds() if first_fired else float("nan"),
            ok=ok,
            service_cpu=used[0],
            postgres_cpu=used[1],
            broker_cpu=used[2],
            idle_rss=sampler.last_before(start),
            peak_rss=sampler.peak_between(start, end),
            hwm=hwm.hwm if hwm else 0,
            load=load,
        )
    finally:
        if service is not None:
            service.stop()
        broker.stop()
        await drop_database(server_dsn, name)


# Figure 2: the claim statement alone, and PGQueuer


def claim_sql() -> str:
    """``repository.CLAIM_DUE_STEPS``, whose parameters are asyncpg's $1 = now, $2 = limit,
    $3 = the skip reason."""
    return repo.CLAIM_DUE_STEPS


@dataclass
class Claims:
    batch: int
    claimed: int
    seconds: float
    batch_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.claimed / self.seconds


async def explain_claim(dsn: str, now: datetime, limit: int, title: str) -> list[str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the claim, rolled back."""
    connection = await asyncpg.connect(dsn)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            rows = await connection.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) " + claim_sql(), now, limit, repo.CATCH_UP_REASON
            )
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    say(title)
    lines = [row[0] for row in rows]
    for line in lines:
        say(f"    {line}")
    return lines


async def run_bare_claims(
    postgres: EmbeddedPostgres, options: Options, batches: Sequence[int], *, explain: bool
) -> list[Claims]:
    """The claim statement alone, on fresh copies of the data, one per batch size."""
    results = []
    for position, batch in enumerate(batches):
        name = f"relance_bench_scheduler_claims_{position}"
        await copy_template(postgres.dsn(), name)
        url, dsn = postgres.url(name), postgres.dsn(name)
        try:
            t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
            expected = await insert_due(dsn, t0, options.due)
            if explain and position == 0:
                say(
                    "the claim statement (repository.CLAIM_DUE_STEPS) as asyncpg runs it, "
                    f"$1 = now, $2 = limit, $3 = the skip reason; {number(len(expected))} steps "
                    f"due, {number(options.future_steps)} planned in the future:"
                )
                for line in claim_sql().strip().splitlines():
                    say(f"    {line.rstrip()}")
            if explain:
                await explain_claim(
                    dsn,
                    t0,
                    batch,
                    f"EXPLAIN (ANALYZE, BUFFERS), LIMIT {batch}, the first batch (rolled back):",
                )
            database = Database(url, pool_size=1)
            claims = Claims(batch, 0, 0.0)
            try:
                started = time.perf_counter()
                while True:
                    batch_started = time.perf_counter()
                    async with database.transaction() as session:
                        rows = await repo.claim_due_steps(session, t0, batch)
                    if not rows:
                        break
                    claims.batch_ms.append((time.perf_counter() - batch_started) * 1000)
                    claims.claimed += len(rows)
                claims.seconds = time.perf_counter() - started
            finally:
                await database.dispose()
            ms = claims.batch_ms
            say(
                f"claim statement alone, batches of {batch}: {number(claims.claimed)} steps in "
                f"{claims.seconds:.2f} s = {number(claims.rate)} steps/s; per batch: first "
                f"{ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, last {ms[-1]:.0f} ms, "
                f"slowest {max(ms):.0f} ms"
            )
            if explain and position == len(batches) - 1:
                await explain_claim(
                    dsn,
                    t0,
                    batch,
                    "EXPLAIN (ANALYZE, BUFFERS) once every due step was claimed (the index "
                    "still holds their dead entries until vacuum):",
                )
            if claims.claimed != len(expected):
                raise RuntimeError(f"the claim loop took {claims.claimed} steps of {len(expected)}")
            results.append(claims)
        finally:
            await drop_database(postgres.dsn(), name)
    return results


@dataclass
class QueueDrain:
    workers: int
    batch: int
    jobs: int
    done: int
    seconds: float
    left: int
    enqueue_seconds: float
    cpu_seconds: float
    postgres_cpu: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def ok(self) -> bool:
        return self.done == self.jobs and self.left == 0


async def run_pgqueuer(dsn: str, jobs: int, workers: int, batch: int) -> QueueDrain:
    """Enqueue ``jobs`` due now, then drain them with ``workers`` QueueManagers."""
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode

    connection = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(connection))
    started = time.perf_counter()
    for start in range(0, jobs, PGQUEUER_ENQUEUE_BATCH):
        size = min(PGQUEUER_ENQUEUE_BATCH, jobs - start)
        await queries.enqueue(
            [ENTRYPOINT] * size, [str(start + n).encode() for n in range(size)], [0] * size
        )
    enqueued = time.perf_counter() - started
    await connection.execute("ANALYZE")
    postgres_cpu = PostgresCpu(await postmaster_pid(dsn))

    done = 0
    connections = [await asyncpg.connect(dsn) for _ in range(workers)]
    managers = []
    for worker_connection in connections:
        manager = QueueManager(Queries(AsyncpgDriver(worker_connection)))

        @manager.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            nonlocal done
            done += 1

        managers.append(manager)
    try:
        cpu = time.process_time()
        pg = postgres_cpu.seconds()
        started = time.perf_counter()
        await asyncio.gather(
            *(
                manager.run(
                    batch_size=batch,
                    mode=QueueExecutionMode.drain,
                    dequeue_timeout=timedelta(seconds=1),
                )
                for manager in managers
            )
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        pg = postgres_cpu.seconds() - pg
        left = int(await connection.fetchval("SELECT count(*) FROM pgqueuer"))
    finally:
        for worker_connection in connections:
            await worker_connection.close()
        await connection.close()
    return QueueDrain(workers, batch, jobs, done, seconds, left, enqueued, cpu, pg)


async def run_pgqueuers(postgres: EmbeddedPostgres, jobs: int) -> list[QueueDrain]:
    """Each setting on a new database with PGQueuer's schema, so that none inherits the
    dead rows of another."""
    from pgqueuer import AsyncpgDriver, Queries, __version__

    results = []
    for position, (workers, batch) in enumerate(PGQUEUER_CONFIGS):
        name = f"{PGQUEUER_DATABASE}_{position}"
        await create_databases(postgres.dsn(), [name])
        dsn = postgres.dsn(name)
        connection = await asyncpg.connect(dsn)
        try:
            await Queries(AsyncpgDriver(connection)).install()
        finally:
            await connection.close()
        if position == 0:
            say(f"PGQueuer {__version__}: its schema installed in a new database per setting")
        try:
            drain = await run_pgqueuer(dsn, jobs, workers, batch)
        finally:
            await drop_database(postgres.dsn(), name)
        say(
            f"PGQueuer, {workers} QueueManager(s) with batch_size={batch}: {number(drain.done)} "
            f"of {number(jobs)} jobs run in {drain.seconds:.2f} s = {number(drain.rate)} jobs/s "
            f"(this process's CPU {drain.cpu_seconds:.1f} s, PostgreSQL {drain.postgres_cpu:.1f}"
            f" s; {drain.left} rows left; enqueued in batches of {PGQUEUER_ENQUEUE_BATCH} in "
            f"{drain.enqueue_seconds:.1f} s), load average {load_average()}"
            + ("" if drain.ok else ": JOBS LOST OR LEFT")
        )
        results.append(drain)
    return results


# Figure 3: the lag at a steady rate


@dataclass
class Lag:
    steps: int
    received: int
    arrival: list[float]
    stamped: list[float]
    duplicated: int
    service_cpu: float
    seconds: float
    idle_cpu: float  # seconds of CPU per second while no step was due

    @property
    def ok(self) -> bool:
        return self.received == self.steps and self.duplicated == 0

    @property
    def cpu_ms_per_step(self) -> float:
        return (self.service_cpu - self.idle_cpu * self.seconds) / self.steps * 1000


def lag_line(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p95 {percentile(values, 0.95) * 1000:.0f} "
        f"ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


async def run_lag(postgres: EmbeddedPostgres, workdir: Path, options: Options, index: int) -> Lag:
    name = f"relance_bench_scheduler_lag_{index}"
    await copy_template(postgres.dsn(), name)
    url, dsn = postgres.url(name), postgres.dsn(name)
    broker = EmbeddedBroker(free_port(), workdir / f"broker-lag-{index}.log")
    service: Service | None = None
    count = options.lag_rate * options.lag_seconds
    firing_batch, outbox_batch = DEFAULT_BATCHES[0]
    try:
        await ensure_topics(broker.bootstrap_servers, TOPICS, PARTITIONS)
        service = Service(
            url,
            broker.bootstrap_servers,
            firing_batch,
            outbox_batch,
            workdir / f"scheduler-lag-{index}.log",
            uvloop=options.uvloop,
        )
        await service.wait_ready()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            start = datetime.now(UTC) + timedelta(seconds=LAG_LEAD_SECONDS)
            connection = await asyncpg.connect(dsn)
            try:
                async with connection.transaction():
                    arguments = (start, count, ORGANIZATIONS)
                    await connection.execute(INSERT_LAG_PLANS, *arguments)
                    await connection.execute(INSERT_LAG_STEPS, *arguments, float(options.lag_rate))
            finally:
                await connection.close()
            say(
                f"lag round {index}: {number(count)} steps due from {start:%H:%M:%S.%f} at "
                f"{options.lag_rate} a second for {options.lag_seconds} s (firing batch "
                f"{firing_batch}, outbox batch {outbox_batch}), load average {load_average()}"
            )
            # the service's CPU while it waits for the first step, then while steps fall due
            idle_from = (time.monotonic(), service.cpu_seconds())
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
            busy_from = (time.monotonic(), service.cpu_seconds())
            idle_cpu = (busy_from[1] - idle_from[1]) / (busy_from[0] - idle_from[0])
            seen: Counter[str] = Counter()
            arrival: list[float] = []
            stamped: list[float] = []
            deadline = time.time() + LAG_LEAD_SECONDS + options.lag_seconds + 30
            while sum(seen.values()) < count and time.time() < deadline:
                batches = await consumer.getmany(timeout_ms=100)
                received_at = time.time()
                for batch in batches.values():
                    for message in batch:
                        if ("ce_type", b"reminder.due") not in message.headers:
                            continue
                        data = json.loads(message.value)
                        seen[data["step_id"]] += 1
                        due = datetime.fromisoformat(data["scheduled_for"]).timestamp()
                        arrival.append(received_at - due)
                        stamped.append(message.timestamp / 1000 - due)
            seconds = time.monotonic() - busy_from[0]
            service_cpu = service.cpu_seconds() - busy_from[1]
        finally:
            await consumer.stop()
    finally:
        if service is not None:
            service.stop()
        broker.stop()
        await drop_database(postgres.dsn(), name)
    lag = Lag(
        count,
        len(seen),
        arrival,
        stamped,
        sum(1 for n in seen.values() if n > 1),
        service_cpu,
        seconds,
        idle_cpu,
    )
    say(
        f"  {number(lag.received)} of {number(count)} steps arrived ({lag.duplicated} twice); "
        f"lag on arrival: {lag_line(arrival)}; by the record's timestamp: {lag_line(stamped)}; "
        f"the service's CPU {service_cpu:.1f} s over {seconds:.0f} s "
        f"({service_cpu / seconds:.0%} of a core; {idle_cpu:.0%} before the first step was "
        f"due): {lag.cpu_ms_per_step:.1f} ms of CPU per step"
    )
    return lag


# Running it all


def run_loop(work: Coroutine[Any, Any, T], *, uvloop: bool) -> T:
    """Run ``work`` on the asyncio loop, or on uvloop (what PGQueuer's own command line uses)."""
    if uvloop:
        import uvloop as uvloop_module

        return uvloop_module.run(work)
    return asyncio.run(work)


def run(options: Options, *, firing: bool, lag: bool) -> bool:
    """Run the selected figures and print them; False if a step or a job went wrong."""
    what = []
    if firing:
        what.append(f"{number(options.due)} steps due at once")
    if lag:
        what.append(f"{options.lag_rate} steps due a second for {options.lag_seconds} s")
    print(
        f"== scheduler firing: {' and '.join(what)}, {number(options.future_steps)} planned "
        f"in the future, {os.cpu_count()} CPUs, load average {load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-scheduler-"))
    postgres: EmbeddedPostgres | None = None
    ok = True
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; logs in {workdir}")
        asyncio.run(create_databases(postgres.dsn(), [TEMPLATE]))
        upgrade("relance.scheduler", postgres.url(TEMPLATE))
        asyncio.run(build_template(postgres.dsn(TEMPLATE), options))
        if firing:
            ok = _firing(postgres, workdir, options) and ok
        if lag:
            ok = _lag(postgres, workdir, options) and ok
    except RuntimeError as exc:
        print(f"scheduler: FAILED: {exc}", flush=True)
        ok = False
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return ok


def _firing(postgres: EmbeddedPostgres, workdir: Path, options: Options) -> bool:
    """Each repetition runs the bursts, the claim statement alone and PGQueuer one after
    the other, so that each ratio compares figures taken under the same load."""
    bursts: list[Burst] = []
    claims: list[Claims] = []
    drains: list[QueueDrain] = []
    ratios: list[float] = []
    claim_ratios: list[float] = []
    index = 0
    claim_batches = sorted({firing for firing, _ in options.batches})
    for repetition in range(options.repeat):
        these: list[Burst] = []
        for firing_batch, outbox_batch in options.batches:
            index += 1
            burst = asyncio.run(
                run_burst(postgres, workdir, options, firing_batch, outbox_batch, index)
            )
            say(f"  {burst.line()}")
            these.append(burst)
        claimed = asyncio.run(
            run_bare_claims(postgres, options, claim_batches, explain=repetition == 0)
        )
        drained = run_loop(run_pgqueuers(postgres, options.due), uvloop=options.uvloop)
        best_here = max(b.rate for b in these)
        ratios.append(best_here / max(d.rate for d in drained))
        claim_ratios.append(best_here / max(c.rate for c in claimed))
        say(
            f"repetition {repetition + 1}: best burst {number(best_here)} steps/s, "
            f"{ratios[-1]:.2f} of PGQueuer's best, {claim_ratios[-1]:.2f} of the claim "
            f"statement alone; load average {load_average()}"
        )
        bursts += these
        claims += claimed
        drains += drained
    say(f"load average after: {load_average()}")

    delivered = all(b.ok for b in bursts)
    best = max(bursts, key=lambda b: b.rate)
    rates = [b.rate for b in bursts]
    by_setting = "; ".join(
        f"{f}/{o}: "
        + ", ".join(
            f"{b.seconds:.1f} s" for b in bursts if (b.firing_batch, b.outbox_batch) == (f, o)
        )
        for f, o in options.batches
    )
    print(
        figure(
            f"scheduler burst, {number(options.due)} steps due at once to the broker",
            f"{best.seconds:.2f} s = {number(best.rate)} steps/s",
            f"<= {options.due / TARGET_STEPS_PER_SECOND:.1f} s "
            f"(>= {number(TARGET_STEPS_PER_SECOND)} steps/s)",
            best.rate >= TARGET_STEPS_PER_SECOND,
            f"best of {len(bursts)} rounds, firing batch {best.firing_batch}, outbox batch "
            f"{best.outbox_batch}; all rounds {number(min(rates))} to {number(max(rates))} "
            f"steps/s; by firing/outbox batch: {by_setting}",
        ),
        flush=True,
    )
    best_drain = max(drains, key=lambda d: d.rate)
    ratio = statistics.median(ratios)
    print(
        figure(
            "scheduler burst / PGQueuer drain",
            f"{ratio:.2f}",
            f">= {TARGET_RATIO_PGQUEUER}",
            ratio >= TARGET_RATIO_PGQUEUER,
            f"median over {len(ratios)} repetition(s) of the best burst / the best drain of "
            f"the same repetition: {', '.join(f'{r:.2f}' for r in ratios)}; PGQueuer "
            f"{number(best_drain.rate)} jobs/s at best ({best_drain.workers} QueueManager(s), "
            "batch_size="
            f"{best_drain.batch}); all: "
            + ", ".join(f"{d.workers}x{d.batch} {number(d.rate)}" for d in drains),
        ),
        flush=True,
    )
    per_step = 1e6 / options.due
    print(
        "CPU per step or job (medians, load-independent): scheduler process "
        f"{statistics.median(b.service_cpu for b in bursts) * per_step:.0f} µs + PostgreSQL "
        f"{statistics.median(b.postgres_cpu for b in bursts) * per_step:.0f} µs + broker "
        f"{statistics.median(b.broker_cpu for b in bursts) * per_step:.0f} µs; PGQueuer "
        f"process {statistics.median(d.cpu_seconds for d in drains) * per_step:.0f} µs + "
        f"PostgreSQL {statistics.median(d.postgres_cpu for d in drains) * per_step:.0f} µs",
        flush=True,
    )
    best_claims = max(claims, key=lambda c: c.rate)
    print(
        "scheduler burst / the claim statement alone: "
        f"{statistics.median(claim_ratios):.2f} (median over the repetitions: "
        f"{', '.join(f'{r:.2f}' for r in claim_ratios)}; claims alone "
        f"{number(best_claims.rate)} steps/s at best, in batches of {best_claims.batch}; all: "
        + ", ".join(f"{c.batch}: {number(c.rate)}" for c in claims)
        + ")",
        flush=True,
    )
    peak = max(b.peak_rss for b in bursts)
    hwm = max(b.hwm for b in bursts)
    print(
        figure(
            "scheduler peak RSS during the burst",
            f"{peak / MB:.0f} MB",
            f"< {TARGET_RSS_MB:.0f} MB",
            max(peak, hwm) < TARGET_RSS_MB * MB,
            f"VmRSS sampled every {SAMPLE_SECONDS * 1000:.0f} ms, highest of {len(bursts)} "
            f"rounds; VmHWM up to {hwm / MB:.0f} MB; idle before the burst "
            + ", ".join(f"{b.idle_rss / MB:.0f}" for b in bursts)
            + " MB",
        ),
        flush=True,
    )
    pgqueuer_ok = all(d.ok for d in drains)
    print(
        f"scheduler burst delivery: every due step's reminder.due on the broker once, in "
        f"every round: {'OK' if delivered else 'FAILED'}; PGQueuer ran every job once: "
        + ("OK" if pgqueuer_ok else "FAILED"),
        flush=True,
    )
    return delivered and pgqueuer_ok


def _lag(postgres: EmbeddedPostgres, workdir: Path, options: Options) -> bool:
    lags = [asyncio.run(run_lag(postgres, workdir, options, n + 1)) for n in range(options.repeat)]
    arrival = [value for lag in lags for value in lag.arrival]
    stamped = [value for lag in lags for value in lag.stamped]
    p99 = percentile(arrival, 0.99) if arrival else float("inf")
    print(
        figure(
            f"scheduler lag at {options.lag_rate} steps/s, scheduled_for to arrival",
            f"p99 {p99 * 1000:.0f} ms",
            f"p99 < {TARGET_LAG_P99_SECONDS * 1000:.0f} ms",
            p99 < TARGET_LAG_P99_SECONDS,
            f"{number(len(arrival))} steps over {len(lags)} round(s): {lag_line(arrival)}; "
            f"by the record's timestamp {lag_line(stamped)}",
        ),
        flush=True,
    )
    ok = all(lag.ok for lag in lags)
    print(
        "scheduler lag delivery: every step's reminder.due arrived once: "
        + ("OK" if ok else "FAILED"),
        flush=True,
    )
    return ok
