"""Pytest fixtures on the real embedded parts, for every test suite of the project.

- ``postgres``: one embedded PostgreSQL server for the whole session (fsync off).
- ``make_database``: a new, migrated database per call, cloned from a template made once
  per service, so tests never see each other's rows.
- ``broker``: a fresh in-memory broker per test (it starts in milliseconds), with the
  event topics created: tests never see each other's messages.
- ``mail_catcher``: an SMTP catcher per test, keeping mails in the test's folder.
- ``partner``: a real HTTP server standing for partners' webhook endpoints.

Enabled for the whole tree by the root ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, Request, Response
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from relance.common.db import Database, asyncpg_dsn
from relance.common.events import TOPICS, Event, from_record
from relance.common.kafka import ensure_topics
from relance.common.migrations import upgrade
from relance.common.tables import platform_metadata
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.mailcatcher import MailCatcher
from relance.devstack.ports import free_port
from relance.devstack.postgres import EmbeddedPostgres

MakeDatabase = Callable[..., Awaitable[str]]
PLATFORM_ONLY = "platform"  # make_database() without a service: only the platform tables

_templates: dict[str, str] = {}


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", fast_and_unsafe=True)
    yield server
    server.stop()
    _templates.clear()


@pytest_asyncio.fixture
async def make_database(postgres: EmbeddedPostgres) -> MakeDatabase:
    """``await make_database("relance.scheduler")`` → URL of a new database at the
    service's latest migration; ``await make_database()`` → only the platform tables."""

    async def make(package: str = PLATFORM_ONLY) -> str:
        template = _templates.get(package) or await _make_template(postgres, package)
        _templates[package] = template
        name = f"test_{uuid.uuid4().hex[:16]}"
        connection = await asyncpg.connect(postgres.dsn())
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await connection.close()
        return postgres.url(name)

    return make


@pytest_asyncio.fixture
async def database(make_database: MakeDatabase) -> AsyncIterator[Database]:
    """A new database with the platform tables (outbox, inbox, dead letters)."""
    db = Database(await make_database(), pool_size=5)
    yield db
    await db.dispose()


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    server = await asyncio.to_thread(EmbeddedBroker, free_port(), tmp_path / "broker.log")
    await ensure_topics(server.bootstrap_servers, TOPICS, partitions=3)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
def mail_catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    catcher = MailCatcher(tmp_path / "mail", free_port())
    catcher.start()
    yield catcher
    catcher.stop()


class Partner:
    """A real HTTP server standing for partners: /ok answers 204, /broken 500, /dead hangs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        app = FastAPI()

        @app.post("/{kind}")
        async def receive(kind: str, request: Request) -> Response:
            self.received.append((kind, dict(request.headers), await request.body()))
            if kind == "dead":
                await asyncio.sleep(30)
            return Response(status_code=500 if kind == "broken" else 204)

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
        )

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}"

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(body) for k, _, body in self.received if k == kind]


@pytest_asyncio.fixture
async def partner() -> AsyncIterator[Partner]:
    running = Partner()
    task = asyncio.create_task(running.server.serve())
    for _ in range(500):
        if running.server.started:
            break
        await asyncio.sleep(0.01)
    yield running
    running.server.should_exit = True
    running.server.force_exit = True
    await asyncio.wait({task}, timeout=5)


async def _make_template(postgres: EmbeddedPostgres, package: str) -> str:
    name = f"template_{package.replace('.', '_')}"
    connection = await asyncpg.connect(postgres.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = postgres.url(name)
    if package == PLATFORM_ONLY:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(platform_metadata.create_all)
        await engine.dispose()
    else:
        await asyncio.to_thread(upgrade, package, url)
    return name


async def read_events(bootstrap_servers: str, topic: str, idle_ms: int = 1500) -> list[Event[Any]]:
    """Every event on ``topic`` so far, read from the start, parsed; stops once idle."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        found: list[Event[Any]] = []
        while batch := await consumer.getmany(timeout_ms=idle_ms):
            for records in batch.values():
                found.extend(from_record(list(r.headers), r.value) for r in records)
        return sorted(found, key=lambda e: e.time)
    finally:
        await consumer.stop()


async def wait_for_events(
    bootstrap_servers: str, topic: str, count: int, within: float = 20.0
) -> list[Event[Any]]:
    """The events on ``topic`` once there are at least ``count`` (the relay may lag)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await read_events(bootstrap_servers, topic, idle_ms=300)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a ``/metrics`` page, as a Prometheus scrape reads it; 0
    when the sample is not there yet (a counter nothing has incremented)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def fail_at_commit(database_url: str, table: str, *, sqlstate: str | None = None) -> None:
    """From now on, every transaction that writes ``table`` fails when it commits, as a
    deferred constraint does: with the SQLSTATE ``sqlstate`` (for example ``40001``, a
    serialization failure), or, without one, by its server process being terminated at
    that moment (a lost connection). Everything the route did before went well."""
    failure = (
        f"RAISE EXCEPTION 'refused at commit' USING ERRCODE = '{sqlstate}';"
        if sqlstate
        else "PERFORM pg_terminate_backend(pg_backend_pid());"
    )
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute(
            f"""
            CREATE OR REPLACE FUNCTION relance_test_refuse_at_commit() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN {failure} RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER relance_test_refuse_at_commit
                AFTER INSERT OR UPDATE OR DELETE ON {table}
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                EXECUTE FUNCTION relance_test_refuse_at_commit();
            """
        )
    finally:
        await connection.close()
