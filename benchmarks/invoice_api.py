"""The invoice API over HTTP: creating invoices, and listing the ones to collect.

Both figures run the real app (``create_app(SPEC)`` of ``relance.invoice_api``) under
uvicorn in a child process (one worker, ``log_config=None, access_log=False``, no uvloop or
httptools: what ``relance-invoice-api serve`` runs), on a fresh database of an embedded
PostgreSQL started in a temporary folder and migrated by the service's alembic revisions.
The load comes from this process, so the client and the server do not share an event loop.
The app's broker is a free port nobody listens on: the outbox relay's task fails to connect
and retries in the background, so the events stay in the outbox, where the benchmark counts
them. The consumers are off. The server also counts its SQL statements and its full garbage
collections, and answers them on ``/_bench/...`` routes that the benchmark adds.

``invoices-post``: an organization (``POST /v1/organizations`` with the admin token) and a
customer, then ``N`` ``POST /v1/invoices`` of already sent invoices (``sent_at`` given, so
each writes an ``invoice.sent`` event to the outbox), ``C`` in flight, each on its own
keep-alive connection. By default each connection is a minimal HTTP/1.1 client on asyncio
streams, because httpx spends more CPU per request than the bare app does and, on two
cores, would measure itself; ``--client httpx`` uses one ``httpx.AsyncClient`` per request
in flight instead. Every answer must be 201, and the database must then hold each invoice
and one ``invoice.sent`` outbox row per invoice. The baseline is a bare FastAPI app defined
here: one POST route that validates a similar body and does one INSERT through an asyncpg
pool into a plain table on the same PostgreSQL, run and loaded the same way. The CPU time
of the server, of PostgreSQL and of the client per request says where the two cores go;
``--profile`` adds a cProfile of the service's server during the timed requests.

``invoices-list``: 100,000 sent invoices of 300 customers (mixed statuses, most overdue)
and the reminder plans of the open ones are loaded with COPY, then ANALYZE; then
``GET /v1/invoices?status=to_collect`` (default limit) is timed one request at a time
with httpx, pages after random cursors too, and the whole list is walked with
``next_cursor`` to check that every invoice to collect comes back once. The statuses
expected are computed with ``status.invoice_status``, the rule the API states. The SQL the
endpoint runs is captured from ``repository.list_invoices`` and shown with ``EXPLAIN
(ANALYZE, BUFFERS)``, also as a generic plan (what a prepared statement may switch to) and
after a cursor.

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import psutil
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import event

from benchmarks.report import figure, number, say
from benchmarks.stack import stop_child, wait_for_answer
from relance.common.calendar import BusinessCalendar
from relance.common.clock import SystemClock, local_today
from relance.common.db import Database, asyncpg_dsn
from relance.common.logging import configure_logging
from relance.common.migrations import upgrade
from relance.common.paging import encode_cursor
from relance.common.service import create_app
from relance.devstack.ports import free_port
from relance.devstack.postgres import EmbeddedPostgres, create_databases
from relance.invoice_api import repository as repo
from relance.invoice_api.app import SPEC
from relance.invoice_api.settings import InvoiceApiSettings
from relance.invoice_api.status import InvoiceStatus, StatusFacts, invoice_status

TARGET_POST_PER_SECOND = 500
TARGET_POST_RATIO = 0.6
TARGET_LIST_P95_MS = 50.0
DEFAULT_POSTS = 5000
DEFAULT_CONCURRENCY = 32
DEFAULT_LIST_INVOICES = 100_000
LIST_REQUESTS = 200
RANDOM_CURSOR_PAGES = 50
WARMUP_REQUESTS = 200
CUSTOMERS = 300
DEFAULT_PAGE = 50  # the API's default limit
WALK_PAGE = 200  # the API's largest limit, to walk the whole list
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a made-up token for a throwaway server
TIMEZONE = "Europe/Paris"
DATABASE = "relance_bench_invoice_api"
BARE_DATABASE = "relance_bench_bare"
ROOT = Path(__file__).resolve().parents[1]


# The servers (run in a child process: python -m benchmarks.invoice_api serve ...)


class BareInvoiceIn(BaseModel):
    """What the baseline validates: the fields of ``POST /v1/invoices``, plainly typed."""

    customer_id: uuid.UUID
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    invoice_text: str | None = None
    payment_reference: str | None = None
    sent_at: datetime | None = None


BARE_TABLE = """
CREATE TABLE IF NOT EXISTS bare_invoices (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    number text NOT NULL,
    issue_date date NOT NULL,
    due_date date NOT NULL,
    currency text NOT NULL,
    total numeric(18, 4) NOT NULL,
    invoice_text text,
    payment_reference text,
    sent_at timestamptz,
    created_at timestamptz NOT NULL
)
"""

BARE_INSERT = """
INSERT INTO bare_invoices (id, customer_id, number, issue_date, due_date, currency, total,
                           invoice_text, payment_reference, sent_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


def bare_app(dsn: str) -> FastAPI:
    """The baseline: FastAPI, one validated body, one INSERT through an asyncpg pool (the
    same size as the service's: 10 connections, up to 20)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="bare baseline", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/invoices", status_code=201)
    async def create(body: BareInvoiceIn, request: Request) -> dict[str, Any]:
        invoice_id = uuid.uuid4()
        now = datetime.now(UTC)
        await request.app.state.pool.execute(
            BARE_INSERT,
            invoice_id,
            body.customer_id,
            body.number,
            body.issue_date,
            body.due_date,
            body.currency,
            body.total,
            body.invoice_text,
            body.payment_reference,
            body.sent_at,
            now,
        )
        return {"id": str(invoice_id), **body.model_dump(mode="json"), "created_at": now}

    return app


def invoice_api_app(database_url: str, port: int) -> FastAPI:
    """The real service, as ``relance-invoice-api serve`` builds it, with a broker address
    nobody answers on and the consumers off; it counts its SQL statements (one Python call
    per statement) and tells the count at ``GET /_bench/statements``."""
    configure_logging(SPEC.name, "INFO")
    settings = InvoiceApiSettings(
        database_url=database_url,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        admin_token=ADMIN_TOKEN,
        host="127.0.0.1",
        port=port,
        run_consumers=False,
    )
    app = create_app(SPEC, settings)
    statements = Counter[str]()

    def count(*_: Any) -> None:
        statements["all"] += 1

    event.listen(app.state.runtime.database.engine.sync_engine, "before_cursor_execute", count)

    async def statement_count() -> dict[str, int]:
        return {"statements": statements["all"]}

    app.add_api_route("/_bench/statements", statement_count, methods=["GET"])
    pauses = GcPauses()
    gc.callbacks.append(pauses.callback)

    async def gc_pauses() -> dict[str, float]:
        return pauses.summary()

    app.add_api_route("/_bench/gc", gc_pauses, methods=["GET"])
    return app


class GcPauses:
    """How long the server's full garbage collections (generation 2) take."""

    def __init__(self) -> None:
        self._started = 0.0
        self.durations: list[float] = []

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)

    def summary(self) -> dict[str, float]:
        return {
            "count": len(self.durations),
            "longest_ms": max(self.durations, default=0.0) * 1000,
            "total_ms": sum(self.durations) * 1000,
        }


def serve(kind: str, port: int, database_url: str, profile: Path | None) -> None:
    app = invoice_api_app(database_url, port) if kind == "invoice-api" else bare_app(database_url)
    if profile is not None:
        profiler = cProfile.Profile()

        async def start_profile() -> dict[str, str]:
            profiler.enable()
            return {"profile": "started"}

        async def stop_profile() -> dict[str, str]:
            profiler.disable()
            profiler.dump_stats(profile)
            return {"profile": str(profile)}

        app.add_api_route("/_bench/profile/start", start_profile, methods=["POST"])
        app.add_api_route("/_bench/profile/stop", stop_profile, methods=["POST"])
    # the asyncio loop, as `serve` runs it: uvicorn would take uvloop, which the dev tools
    # bring in (pgqueuer) and a production install lacks, for both apps otherwise
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="asyncio")


class Server:
    """One of the two apps under uvicorn in a child process, on a free port."""

    def __init__(
        self, kind: str, database_url: str, log_path: Path, *, profile: Path | None = None
    ) -> None:
        self.kind = kind
        self.profile = profile
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.invoice_api",
                "serve",
                kind,
                str(self.port),
                database_url,
                *(["--profile", str(profile)] if profile else []),
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path

    async def wait_ready(self) -> None:
        await wait_for_answer(
            self.process, self.base_url + "/healthz", f"the {self.kind} server", self.log_path
        )

    async def profiling(self, action: str) -> None:
        """Start or stop (and write) the server's cProfile, when it has one."""
        if self.profile is not None:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=30.0) as client:
                (await client.post(f"/_bench/profile/{action}")).raise_for_status()

    def cpu_seconds(self) -> tuple[float, float]:
        """User and system CPU time of the server's process so far."""
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user), float(times.system)

    def stop(self) -> None:
        stop_child(self.process, self._log)


# Shared helpers


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (``share`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class PostgresCpu:
    """CPU time of the whole PostgreSQL server (postmaster and every backend alive)."""

    def __init__(self, postmaster_pid: int) -> None:
        self._postmaster = psutil.Process(postmaster_pid)

    def seconds(self) -> float:
        total = 0.0
        for process in [self._postmaster, *self._postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total


async def postmaster_pid(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        backend = int(await connection.fetchval("SELECT pg_backend_pid()"))
        return int(psutil.Process(backend).ppid())  # while the backend lives
    finally:
        await connection.close()


async def new_organization(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    answer = await client.post(
        "/v1/organizations",
        json={"name": name, "country": "FR", "timezone": TIMEZONE},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"POST /v1/organizations answered {answer.status_code}: {answer.text}")
    org: dict[str, Any] = answer.json()
    return org


# invoices-post: POST /v1/invoices throughput against a bare FastAPI app


@dataclass
class Load:
    """What one load run measured."""

    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[str]
    failures: list[str]
    client_cpu: float
    server_cpu: float
    server_system: float  # the part of server_cpu spent in the kernel
    postgres_cpu: float
    statements: int | None = None
    gc: str | None = None  # the server's full garbage collections (invoice-api only)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def created(self) -> int:
        return self.statuses["201"]

    def per_request_us(self, cpu_seconds: float) -> float:
        return cpu_seconds / self.requests * 1e6


def invoice_bodies(customer_id: str, start: int, count: int, today: date) -> list[bytes]:
    """``count`` JSON bodies of already sent invoices, numbers ``start`` onwards."""
    issued = today - timedelta(days=20)
    sent_at = datetime.combine(issued, clock_time(9, 0), tzinfo=UTC).isoformat()
    bodies = []
    for index in range(start, start + count):
        body = {
            "customer_id": customer_id,
            "number": f"FA-2026-{index:07d}",
            "issue_date": issued.isoformat(),
            "due_date": (issued + timedelta(days=30)).isoformat(),
            "currency": "EUR",
            "total": f"{1000 + index % 5000}.50",
            "invoice_text": "Prestations de conseil, novembre 2026",
            "payment_reference": f"RF18{index:010d}",
            "sent_at": sent_at,
        }
        bodies.append(json.dumps(body).encode())
    return bodies


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams, for the load: the requests are
    bytes made in advance, the answer is read by its Content-Length. It spends about a tenth
    of httpx's CPU per request, which matters when client and server share two cores."""

    def __init__(self, server: Server, headers: dict[str, str]) -> None:
        lines = [
            "POST /v1/invoices HTTP/1.1",
            f"host: 127.0.0.1:{server.port}",
            "content-type: application/json",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self._head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode()
        self._server = server
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._server.port)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status = int((await self._reader.readline()).split()[1])
        length = None
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ConnectionError(f"an answer {status} without Content-Length")
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


class HttpxConnection:
    """The same with ``httpx.AsyncClient``, one client (one keep-alive connection) per
    request in flight: one client shared by 32 requests in flight spends about 4 ms of CPU
    per request in its connection pool here, one each about 1.1 ms."""

    def __init__(self, server: Server, headers: dict[str, str]) -> None:
        self._client = httpx.AsyncClient(base_url=server.base_url, timeout=60.0)
        self._headers = {"content-type": "application/json", **headers}

    async def open(self) -> None:
        await self._client.get("/healthz")

    async def post(self, body: bytes) -> tuple[int, bytes]:
        answer = await self._client.post("/v1/invoices", content=body, headers=self._headers)
        return answer.status_code, answer.content

    async def close(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, type[RawConnection | HttpxConnection]] = {
    "raw": RawConnection,
    "httpx": HttpxConnection,
}


async def drive(
    server: Server,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
    postgres: PostgresCpu,
    client: str,
) -> Load:
    """POST every body to ``/v1/invoices``, ``concurrency`` in flight, each on its own
    keep-alive connection (opened before the clock starts); times the whole and each
    request."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    queue = iter(bodies)
    connections = [CLIENTS[client](server, headers) for _ in range(concurrency)]

    async def worker(connection: RawConnection | HttpxConnection) -> None:
        for body in queue:
            started = time.perf_counter()
            try:
                status, answer = await connection.post(body)
            except (OSError, ValueError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
                statuses[type(exc).__name__] += 1
                if len(failures) < 3:
                    failures.append(repr(exc))
                return  # this connection is unusable; the others go on
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] += 1
            if status != 201 and len(failures) < 3:
                failures.append(f"{status}: {answer[:300].decode(errors='replace')}")

    try:
        await asyncio.gather(*(connection.open() for connection in connections))
        user, system = server.cpu_seconds()
        postgres_cpu = postgres.seconds()
        client_cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker(connection) for connection in connections))
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        user_after, system_after = server.cpu_seconds()
        postgres_cpu = postgres.seconds() - postgres_cpu
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    return Load(
        requests=len(bodies),
        seconds=seconds,
        latencies=latencies,
        statuses=statuses,
        failures=failures,
        client_cpu=client_cpu,
        server_cpu=user_after - user + system_after - system,
        server_system=system_after - system,
        postgres_cpu=postgres_cpu,
    )


async def gc_line(server: Server) -> str:
    """The server's full garbage collections since it started, as a phrase."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
        found = (await client.get("/_bench/gc")).json()
    return (
        f"{found['count']:.0f} full garbage collections in the server since it started, "
        f"longest {found['longest_ms']:.0f} ms, {found['total_ms']:.0f} ms in all"
    )


async def statement_count(server: Server) -> int:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
        return int((await client.get("/_bench/statements")).json()["statements"])


def describe_load(name: str, load: Load) -> None:
    cores = (load.server_cpu + load.postgres_cpu + load.client_cpu) / load.seconds
    say(
        f"{name}: {number(load.requests)} requests in {load.seconds:.2f} s = "
        f"{number(load.rate)} requests/s; latency p50 {ms(percentile(load.latencies, 0.5))}, "
        f"p95 {ms(percentile(load.latencies, 0.95))}, p99 {ms(percentile(load.latencies, 0.99))}"
        if load.latencies
        else f"{name}: no request answered"
    )
    say(
        f"  CPU per request: server {load.per_request_us(load.server_cpu):.0f} µs ("
        f"{load.per_request_us(load.server_system):.0f} µs of it in the kernel; busy "
        f"{load.server_cpu / load.seconds:.0%}), PostgreSQL "
        f"{load.per_request_us(load.postgres_cpu):.0f} µs ({load.postgres_cpu / load.seconds:.0%}"
        f"), client {load.per_request_us(load.client_cpu):.0f} µs "
        f"({load.client_cpu / load.seconds:.0%}); {cores:.2f} of {os.cpu_count()} cores busy"
        + (
            f"; {load.statements / load.requests:.1f} SQL statements per request"
            if load.statements is not None
            else ""
        )
    )
    answers = ", ".join(f"{count} x {status}" for status, count in sorted(load.statuses.items()))
    say(f"  answers: {answers}")
    if load.gc is not None:
        say(f"  {load.gc}")
    for failure in load.failures:
        say(f"  failure: {failure}")


@dataclass(frozen=True)
class PostOptions:
    requests: int = DEFAULT_POSTS
    concurrency: int = DEFAULT_CONCURRENCY
    client: str = "raw"  # or "httpx"
    profile: bool = False  # cProfile the invoice-api server during the timed run


async def _serve_and_drive(
    server: Server,
    setup: Callable[[Server], Awaitable[tuple[str, dict[str, str]]]],
    options: PostOptions,
    postgres: PostgresCpu,
) -> tuple[Load, str]:
    """Start ``server``, make its customer (``setup``), warm it up, then the timed load."""
    today = local_today(SystemClock(), TIMEZONE)
    try:
        await server.wait_ready()
        customer, headers = await setup(server)
        warm = invoice_bodies(customer, 0, WARMUP_REQUESTS, today)
        await drive(server, warm, headers, 8, postgres, options.client)
        before = await statement_count(server) if server.kind == "invoice-api" else None
        bodies = invoice_bodies(customer, WARMUP_REQUESTS, options.requests, today)
        await server.profiling("start")
        load = await drive(server, bodies, headers, options.concurrency, postgres, options.client)
        await server.profiling("stop")
        if before is not None:
            load.statements = await statement_count(server) - before
            load.gc = await gc_line(server)
    finally:
        server.stop()
    return load, customer


async def _post_round(postgres: EmbeddedPostgres, workdir: Path, options: PostOptions) -> bool:
    """The baseline, then the service; prints what each did. False if something failed."""
    pg_cpu = PostgresCpu(await postmaster_pid(postgres.dsn()))

    await create_databases(postgres.dsn(), [BARE_DATABASE])
    bare_dsn = postgres.dsn(BARE_DATABASE)
    connection = await asyncpg.connect(bare_dsn)
    try:
        await connection.execute(BARE_TABLE)
    finally:
        await connection.close()

    async def no_setup(_: Server) -> tuple[str, dict[str, str]]:
        return str(uuid.uuid4()), {}

    server = Server("bare", bare_dsn, workdir / "bare.log")
    bare, _ = await _serve_and_drive(server, no_setup, options, pg_cpu)
    connection = await asyncpg.connect(bare_dsn)
    try:
        bare_rows = int(await connection.fetchval("SELECT count(*) FROM bare_invoices"))
    finally:
        await connection.close()
    describe_load("bare FastAPI + asyncpg, one INSERT", bare)
    bare_ok = bare.created() == options.requests and bare_rows == options.requests + WARMUP_REQUESTS
    say(
        f"  {number(bare_rows)} rows in bare_invoices (warm-up {WARMUP_REQUESTS} included): "
        + ("OK" if bare_ok else "MISSING ROWS OR FAILED REQUESTS")
    )

    await create_databases(postgres.dsn(), [DATABASE])
    url = postgres.url(DATABASE)
    await asyncio.to_thread(upgrade, "relance.invoice_api", url)
    org: dict[str, Any] = {}

    async def organization_and_customer(server: Server) -> tuple[str, dict[str, str]]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
            org.update(await new_organization(client, "Atelier Dupont SARL"))
            headers = {"authorization": f"Bearer {org['api_key']}"}
            answer = await client.post(
                "/v1/customers",
                json={"name": "Boulangerie Martin", "email": "compta@martin.example"},
                headers=headers,
            )
            if answer.status_code != 201:
                raise RuntimeError(f"POST /v1/customers answered {answer.status_code}")
            return str(answer.json()["id"]), headers

    profile = workdir / "invoice-api.prof" if options.profile else None
    server = Server("invoice-api", url, workdir / "invoice-api.log", profile=profile)
    service, _ = await _serve_and_drive(server, organization_and_customer, options, pg_cpu)
    describe_load("invoice-api", service)
    service_ok = service.created() == options.requests and await _check_outbox(
        url, uuid.UUID(org["id"]), options.requests + WARMUP_REQUESTS
    )
    ratio = service.rate / bare.rate
    print(
        figure(
            "invoices POST",
            f"{number(service.rate)} requests/s",
            f">= {TARGET_POST_PER_SECOND}",
            service.rate >= TARGET_POST_PER_SECOND,
            f"{options.concurrency} in flight, p95 {ms(percentile(service.latencies, 0.95))}",
        ),
        flush=True,
    )
    print(
        figure(
            "invoices POST / bare FastAPI",
            f"{ratio:.2f}",
            f">= {TARGET_POST_RATIO}",
            ratio >= TARGET_POST_RATIO,
            f"bare FastAPI + asyncpg {number(bare.rate)} requests/s",
        ),
        flush=True,
    )
    ok = bare_ok and service_ok
    print(
        f"invoices POST answers: {number(service.created())} of {number(options.requests)} "
        "created (201), each with its invoice.sent event in the outbox: "
        + ("OK" if ok else "FAILED"),
        flush=True,
    )
    if profile is not None and profile.exists():
        print_profile(profile, service.requests)
    return ok


def print_profile(path: Path, requests: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    say(f"cProfile of the invoice-api server during the {number(requests)} timed requests:")
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(60)
    print(out.getvalue(), flush=True)


async def _check_outbox(url: str, org_id: uuid.UUID, expected: int) -> bool:
    """Every invoice is there, and has exactly one ``invoice.sent`` row in the outbox."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        invoices = int(
            await connection.fetchval(
                "SELECT count(*) FROM invoices WHERE organization_id = $1", org_id
            )
        )
        sent_rows = int(
            await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = 'invoice.sent'"
            )
        )
        all_rows = int(await connection.fetchval("SELECT count(*) FROM outbox"))
        without = int(
            await connection.fetchval(
                """
                SELECT count(*) FROM invoices i
                WHERE (SELECT count(*) FROM outbox o
                       WHERE o.event_type = 'invoice.sent'
                         AND o.headers ->> 'ce_subject' = i.id::text) <> 1
                """
            )
        )
    finally:
        await connection.close()
    ok = invoices == expected and sent_rows == expected and without == 0
    say(
        f"  database: {number(invoices)} invoices (warm-up {WARMUP_REQUESTS} included), "
        f"{number(sent_rows)} invoice.sent rows in the outbox ({number(all_rows)} rows in all, "
        f"with the organization's), {without} invoices without exactly one: "
        + ("OK" if ok else "MISSING OR EXTRA ROWS")
    )
    return ok


def run_post(options: PostOptions | None = None) -> bool:
    """Run ``invoices-post`` and print its figures; False if a request failed or a row is
    missing."""
    options = options or PostOptions()
    print(
        f"== invoice API, POST /v1/invoices: {number(options.requests)} requests, "
        f"{options.concurrency} in flight, {options.client} client, {os.cpu_count()} CPUs, "
        f"load average {load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-invoices-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; servers log to {workdir}")
        try:
            ok = asyncio.run(_post_round(postgres, workdir, options))
        except RuntimeError as exc:
            print(f"invoices POST: FAILED: {exc}", flush=True)
            return False
        print(f"  load average after: {load_average()}", flush=True)
        return ok
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# invoices-list: GET /v1/invoices?status=to_collect over 100,000 invoices


@dataclass
class Dataset:
    """What was loaded, and what the API should answer for it."""

    statuses: Counter[InvoiceStatus] = field(default_factory=Counter)
    to_collect: list[tuple[datetime, uuid.UUID]] = field(default_factory=list)  # newest first
    steps: int = 0


INVOICE_COLUMNS = (
    "id", "organization_id", "customer_id", "number", "issue_date", "due_date", "currency",
    "total", "paid", "invoice_text", "payment_reference", "external_id", "sent_at", "imported",
    "reminders_suspended_at", "suspension_reason", "in_collection_at", "scheduled_payment_on",
    "scheduled_payment_amount", "scheduled_until", "payment_detected", "created_at",
    "updated_at",
)  # fmt: skip
STEP_COLUMNS = (
    "step_id", "organization_id", "invoice_id", "position", "kind", "severity",
    "scheduled_for", "status", "sent_at", "reason",
)  # fmt: skip
STEP_PLAN = (("pre_due", 0, -3), ("due", 1, 0), ("overdue", 2, 7), ("escalation_1", 3, 21))


def make_invoices(
    org_id: uuid.UUID, customer_ids: list[uuid.UUID], count: int, today: date
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Dataset]:
    """``count`` sent invoices issued over the last two years, oldest first: about 15 % paid,
    3 % partly paid, 1 % with a payment scheduled, 1 % with a collection agency, the rest
    open (so most are overdue and the newest are not due yet); and the reminder plan of each
    open one (4 steps, those in the past sent). Seeded: the same every run."""
    rng = random.Random(20261123)  # noqa: S311 - test data, not secrets
    zone = ZoneInfo(TIMEZONE)
    calendar = BusinessCalendar("FR")
    first_day = today - timedelta(days=730)
    now = datetime.now(UTC)
    invoices: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    data = Dataset()
    for index in range(count):
        invoice_id = uuid.uuid4()
        issued = first_day + timedelta(days=index * 730 // count)
        due = issued + timedelta(days=rng.choice((30, 30, 45, 60)))
        created = datetime.combine(issued, clock_time(8, 0), tzinfo=zone) + timedelta(
            seconds=index % 36_000
        )
        sent_at = created + timedelta(minutes=30)
        total = Decimal(rng.randrange(5_000, 2_500_000)) / 100
        paid = Decimal(0)
        in_collection = scheduled_on = scheduled_until = scheduled_amount = suspended = None
        draw = rng.random()
        if draw < 0.15:
            paid = total
        elif draw < 0.18:
            paid = (total / 3).quantize(Decimal("0.01"))
        elif draw < 0.19 and due < today:
            in_collection = sent_at + timedelta(days=60)
        elif draw < 0.20:
            scheduled_on = today + timedelta(days=rng.randrange(0, 10))
            scheduled_until = calendar.add_business_days(scheduled_on, 2)
            scheduled_amount = total
        if paid < total and rng.random() < 0.01:
            suspended = now
        status = invoice_status(
            StatusFacts(
                sent_at=sent_at,
                total=total,
                paid=paid,
                due_date=due,
                in_collection=in_collection is not None,
                scheduled_until=scheduled_until,
            ),
            today,
        )
        data.statuses[status] += 1
        if status == InvoiceStatus.TO_COLLECT:
            data.to_collect.append((created, invoice_id))
        invoices.append(
            (
                invoice_id,
                org_id,
                customer_ids[rng.randrange(len(customer_ids))],
                f"FA-{issued.year}-{index:06d}",
                issued,
                due,
                "EUR",
                total,
                paid,
                "Prestations de conseil" if index % 3 else None,
                f"RF18{index:010d}",
                f"erp-{index}" if index % 2 else None,
                sent_at,
                True,
                suspended,
                "litige client" if suspended else None,
                in_collection,
                scheduled_on,
                scheduled_amount,
                scheduled_until,
                status == InvoiceStatus.TO_COLLECT and rng.random() < 0.01,
                created,
                created + timedelta(days=1) if paid else created,
            )
        )
        if paid < total:
            for kind, severity, offset in STEP_PLAN:
                at = datetime.combine(due + timedelta(days=offset), clock_time(9, 0), tzinfo=zone)
                past = at.date() < today
                steps.append(
                    (
                        uuid.uuid4(),
                        org_id,
                        invoice_id,
                        severity,
                        kind,
                        severity,
                        at,
                        "sent" if past else "planned",
                        at if past else None,
                        None,
                    )
                )
    data.to_collect.sort(reverse=True)
    data.steps = len(steps)
    return invoices, steps, data


async def load_invoices(url: str, org_id: uuid.UUID, count: int, today: date) -> Dataset:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        watch = time.perf_counter()
        created = datetime.now(UTC) - timedelta(days=800)
        customer_ids = [uuid.uuid4() for _ in range(CUSTOMERS)]
        await connection.copy_records_to_table(
            "customers",
            records=[
                (cid, org_id, f"Client {n:03d}", f"compta{n}@client.example", created)
                for n, cid in enumerate(customer_ids)
            ],
            columns=("id", "organization_id", "name", "email", "created_at"),
        )
        invoices, steps, data = make_invoices(org_id, customer_ids, count, today)
        made = time.perf_counter() - watch
        await connection.copy_records_to_table(
            "invoices", records=invoices, columns=INVOICE_COLUMNS
        )
        await connection.copy_records_to_table(
            "reminder_steps", records=steps, columns=STEP_COLUMNS
        )
        await connection.execute("ANALYZE")
        say(
            f"loaded {number(count)} invoices of {CUSTOMERS} customers and "
            f"{number(data.steps)} reminder steps with COPY, then ANALYZE, in "
            f"{time.perf_counter() - watch:.1f} s ({made:.1f} s making the rows)"
        )
        say(
            "statuses today ("
            + today.isoformat()
            + "): "
            + ", ".join(f"{status} {number(n)}" for status, n in data.statuses.most_common())
        )
    finally:
        await connection.close()
    return data


@dataclass
class Timed:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.latencies:
            return "no answer"
        values = self.latencies
        return (
            f"p50 {ms(percentile(values, 0.5))}, p95 {ms(percentile(values, 0.95))}, "
            f"p99 {ms(percentile(values, 0.99))}, max {ms(max(values))} "
            f"({len(values)} requests)"
        )


def slowest_page(timed: Timed) -> int:
    return max(range(len(timed.latencies)), key=timed.latencies.__getitem__)


async def timed_get(
    client: httpx.AsyncClient, params: dict[str, Any], timed: Timed
) -> dict[str, Any] | None:
    started = time.perf_counter()
    try:
        answer = await client.get("/v1/invoices", params=params)
    except httpx.HTTPError as exc:
        timed.failures.append(repr(exc))
        return None
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        timed.failures.append(f"{answer.status_code}: {answer.text[:300]}")
        return None
    timed.latencies.append(elapsed)
    page: dict[str, Any] = answer.json()
    return page


def page_problem(page: dict[str, Any], expected: list[tuple[datetime, uuid.UUID]]) -> str | None:
    """Why ``page`` is not the slice ``expected`` of the list to collect, or None."""
    ids = [uuid.UUID(item["id"]) for item in page["items"]]
    if ids != [invoice_id for _, invoice_id in expected]:
        return f"expected {len(expected)} given invoices, got {len(ids)} others"
    if any(item["status"] != InvoiceStatus.TO_COLLECT for item in page["items"]):
        return "an invoice not to collect in the page"
    return None


async def _list_round(
    postgres: EmbeddedPostgres, workdir: Path, count: int, requests: int
) -> tuple[Timed, Timed, Timed, bool]:
    await create_databases(postgres.dsn(), [DATABASE])
    url = postgres.url(DATABASE)
    await asyncio.to_thread(upgrade, "relance.invoice_api", url)
    server = Server("invoice-api", url, workdir / "invoice-api.log")
    problems: list[str] = []
    first, cursors, walk = Timed(), Timed(), Timed()
    try:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            org = await new_organization(client, "Atelier Dupont SARL")
            org_id = uuid.UUID(org["id"])
            client.headers["Authorization"] = f"Bearer {org['api_key']}"
            today = local_today(SystemClock(), TIMEZONE)
            data = await load_invoices(url, org_id, count, today)
            expected = data.to_collect
            params: dict[str, Any] = {"status": "to_collect"}

            for _ in range(20):  # warm-up: connections, prepared statements, caches
                await timed_get(client, params, Timed())
            for _ in range(requests):
                page = await timed_get(client, params, first)
                if page is not None and len(problems) < 3:
                    problem = page_problem(page, expected[:DEFAULT_PAGE])
                    if problem:
                        problems.append(f"first page: {problem}")
            say(f"first page ({DEFAULT_PAGE} invoices), one request at a time: {first.line()}")

            rng = random.Random(7)  # noqa: S311 - positions to sample, not secrets
            for _ in range(RANDOM_CURSOR_PAGES):
                at = rng.randrange(len(expected) - DEFAULT_PAGE)
                cursor = encode_cursor(*expected[at])
                page = await timed_get(client, {**params, "cursor": cursor}, cursors)
                if page is not None and len(problems) < 3:
                    problem = page_problem(page, expected[at + 1 : at + 1 + DEFAULT_PAGE])
                    if problem:
                        problems.append(f"page after position {at}: {problem}")
            say(
                f"a page of {DEFAULT_PAGE} after {RANDOM_CURSOR_PAGES} random cursors: "
                f"{cursors.line()}"
            )

            seen: list[uuid.UUID] = []
            cursor_at: str | None = None
            while True:
                walk_params = {**params, "limit": WALK_PAGE}
                if cursor_at is not None:
                    walk_params["cursor"] = cursor_at
                page = await timed_get(client, walk_params, walk)
                if page is None:
                    break
                seen.extend(uuid.UUID(item["id"]) for item in page["items"])
                cursor_at = page["next_cursor"]
                if cursor_at is None:
                    break
            complete = seen == [invoice_id for _, invoice_id in expected]
            say(
                f"the whole list, {WALK_PAGE} per page following next_cursor: "
                f"{number(len(seen))} invoices in {len(walk.latencies)} pages "
                f"({number(len(set(seen)))} distinct; {number(len(expected))} expected): "
                + ("all, once each, in order" if complete else "MISSING, EXTRA OR OUT OF ORDER")
                + f"; {walk.line()}"
                + (f", the slowest is page {slowest_page(walk) + 1}" if walk.latencies else "")
            )
            if not complete:
                problems.append("the walk of the whole list did not give every invoice once")
            say(await gc_line(server))
        await explain_list(url, org_id, today, expected[len(expected) // 2])
    finally:
        server.stop()
    for failure in [*first.failures, *cursors.failures, *walk.failures][:3]:
        problems.append(f"request failed: {failure}")
    for problem in problems:
        say(f"PROBLEM: {problem}")
    return first, cursors, walk, not problems


async def captured_list_sql(
    url: str, org_id: uuid.UUID, today: date, cursor: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters ``repository.list_invoices`` sends for the endpoint's
    default query (``status=to_collect``, limit 50), taken from the driver's cursor."""
    database = Database(url, pool_size=1)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        captured.append((statement, tuple(parameters or ())))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.transaction() as session:
            filters = repo.InvoiceFilters(status=InvoiceStatus.TO_COLLECT)
            await repo.list_invoices(session, org_id, today, filters, DEFAULT_PAGE, cursor)
    finally:
        await database.dispose()
    return next((s, p) for s, p in reversed(captured) if "FROM invoices" in s)


def sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    return "'" + str(value).replace("'", "''") + "'"


async def explain_list(
    url: str, org_id: uuid.UUID, today: date, middle: tuple[datetime, uuid.UUID]
) -> None:
    """Print the captured SQL and its ``EXPLAIN (ANALYZE, BUFFERS)``: the first page as the
    driver sends it, the same as a generic plan (what a prepared statement may switch to
    after five runs), and a page in the middle of the list (with a cursor)."""
    statement, parameters = await captured_list_sql(url, org_id, today, None)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        say("the list query, as repository.list_invoices sends it (status=to_collect, limit 50):")
        for line in statement.splitlines():
            say(f"    {line}")
        say(f"  parameters: {', '.join(sql_literal(p) for p in parameters)}")
        rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *parameters)
        say("EXPLAIN (ANALYZE, BUFFERS), first page:")
        for row in rows:
            say(f"    {row[0]}")

        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE bench_list AS {statement}")
        arguments = ", ".join(sql_literal(p) for p in parameters)
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_list({arguments})")
        say("the same as a generic plan (plan_cache_mode = force_generic_plan):")
        for row in rows:
            say(f"    {row[0]}")
        await connection.execute("DEALLOCATE bench_list")
        await connection.execute("RESET plan_cache_mode")

        statement, parameters = await captured_list_sql(url, org_id, today, encode_cursor(*middle))
        rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *parameters)
        say("EXPLAIN (ANALYZE, BUFFERS), a page in the middle of the list (cursor):")
        for row in rows:
            say(f"    {row[0]}")
    finally:
        await connection.close()


def run_list(count: int = DEFAULT_LIST_INVOICES, requests: int = LIST_REQUESTS) -> bool:
    """Run ``invoices-list`` and print its figures; False if a request failed or a page
    was not what the data says."""
    print(
        f"== invoice API, GET /v1/invoices?status=to_collect: {number(count)} invoices, "
        f"{requests} requests, {os.cpu_count()} CPUs, load average {load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-invoices-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; the server logs to {workdir}")
        try:
            first, cursors, _, ok = asyncio.run(_list_round(postgres, workdir, count, requests))
        except RuntimeError as exc:
            print(f"invoices list: FAILED: {exc}", flush=True)
            return False
        p95 = percentile(first.latencies, 0.95) * 1000 if first.latencies else float("inf")
        print(
            figure(
                "invoices list to_collect p95",
                f"{p95:.1f} ms",
                f"< {TARGET_LIST_P95_MS:.0f} ms",
                p95 < TARGET_LIST_P95_MS,
                f"first page of {DEFAULT_PAGE}, {number(count)} invoices; {first.line()}",
            ),
            flush=True,
        )
        cursor_p95 = percentile(cursors.latencies, 0.95) * 1000 if cursors.latencies else 0.0
        print(
            figure(
                "invoices list to_collect p95, pages at a cursor",
                f"{cursor_p95:.1f} ms",
                f"< {TARGET_LIST_P95_MS:.0f} ms",
                bool(cursors.latencies) and cursor_p95 < TARGET_LIST_P95_MS,
                cursors.line(),
            ),
            flush=True,
        )
        print(
            "invoices list answers: every page as the data says, the whole list once each: "
            + ("OK" if ok else "FAILED"),
            flush=True,
        )
        print(f"  load average after: {load_average()}", flush=True)
        return ok
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.invoice_api")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run one app under uvicorn (internal)")
    serve_parser.add_argument("kind", choices=("invoice-api", "bare"))
    serve_parser.add_argument("port", type=int)
    serve_parser.add_argument("database_url")
    serve_parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    args = parser.parse_args(argv)
    serve(args.kind, args.port, args.database_url, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
