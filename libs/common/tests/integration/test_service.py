"""A service as operators see it: migrations, health, readiness and metrics endpoints,
request ids in the answers, and the command line."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from relance.common.events import Event, to_record
from relance.common.events.organization_events import OrganizationSaved, OrganizationSnapshot
from relance.common.kafka import EventProducer
from relance.common.service import create_app, port_is_free
from relance.common.tenancy import api_key_sha256
from relance.devstack.ports import free_port
from relance.scheduler.app import SPEC
from relance.scheduler.settings import SchedulerSettings


def test_migrate_command_creates_the_platform_tables(postgres):
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    postgres.create_databases([name])
    url = postgres.url(name)

    result = subprocess.run(
        [sys.executable, "-m", "relance.scheduler", "migrate"],
        env={"DATABASE_URL": url, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"event": "database schema up to date"' in result.stdout

    assert {"outbox", "inbox", "dead_letters", "alembic_version"} <= asyncio.run(table_names(url))


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


def test_help_lists_the_commands_and_the_environment():
    result = subprocess.run(
        [sys.executable, "-m", "relance.notifier", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "migrate" in result.stdout
    assert "serve" in result.stdout
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stdout


def test_tracing_settings_it_cannot_honour_stop_the_service_at_start_saying_why():
    result = subprocess.run(
        [sys.executable, "-m", "relance.invoice_api", "serve"],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "PATH": "",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "relance-invoice-api: OTEL_EXPORTER_OTLP_PROTOCOL='grpc'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_taken_port_says_so_and_exits():
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        assert not port_is_free("127.0.0.1", port)
        result = subprocess.run(
            [sys.executable, "-m", "relance.payment_matcher", "serve"],
            env={"PORT": str(port), "HOST": "127.0.0.1", "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


async def call(settings: SchedulerSettings, *paths: str, headers=None) -> list[httpx.Response]:
    app = create_app(SPEC, settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        return [await client.get(path, headers=headers) for path in paths]


async def wait_ready(settings: SchedulerSettings) -> httpx.Response:
    app = create_app(SPEC, settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        for _ in range(600):  # the consumer group's first rebalance takes a few seconds
            answer = await client.get("/readyz")
            if answer.status_code == 200:
                break
            await asyncio.sleep(0.05)
        metrics = await client.get("/metrics")
        assert 'relance_http_requests_total{method="GET",route="/readyz"' in metrics.text
        return answer


async def test_ready_when_database_and_broker_answer_and_the_consumer_caught_up(
    make_database, broker
):
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
    )
    answer = await wait_ready(settings)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "consumer": "ok"},
    }


async def test_a_service_without_consumers_is_ready_without_that_check(make_database, broker):
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        run_consumers=False,
    )
    answer = await wait_ready(settings)
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_once_ready_every_organization_already_on_the_broker_has_a_working_key(
    make_database, broker
):
    """Organizations created while the service was down (or before it ever ran): the
    service must not say ready before their keys work, or a client it is sent to gets a 401
    for a key that invoice-api just gave out."""
    keys = [f"rk_ready-{uuid.uuid4().hex}" for _ in range(20)]
    producer = EventProducer(broker.bootstrap_servers, client_id="invoice-api")
    await producer.start()
    try:
        await producer.send_many(
            to_record(
                Event.new(
                    OrganizationSaved(
                        organization_id=org_id,
                        organization=OrganizationSnapshot(id=org_id, name="Atelier"),
                        api_key_sha256=api_key_sha256(key),
                    ),
                    source="invoice-api",
                    organization_id=org_id,
                    time=datetime.now(UTC),
                )
            )
            for key, org_id in ((key, uuid.uuid4()) for key in keys)
        )
    finally:
        await producer.stop()
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        run_firing=False,
    )
    app = create_app(SPEC, settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client,
    ):
        seen = []
        for _ in range(600):
            answer = await client.get("/readyz")
            seen.append(answer.json()["checks"].get("consumer"))
            if answer.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert seen[-1] == "ok", seen
        assert all(check.startswith("not ready: ") for check in seen[:-1]), seen
        previews = [
            await client.post(
                "/v1/plans/preview",
                json={"sent_on": "2026-03-02", "due_on": "2026-03-31"},
                headers={"Authorization": f"Bearer {key}"},
            )
            for key in keys
        ]
    assert [p.status_code for p in previews] == [200] * len(keys)


async def test_not_ready_and_says_why_when_the_broker_is_unreachable(make_database):
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
    )
    healthz, readyz = await call(settings, "/healthz", "/readyz")
    assert healthz.status_code == 200, "alive even without its dependencies"
    assert readyz.status_code == 503
    body = readyz.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error")


async def test_not_ready_when_the_database_is_unreachable(postgres, broker):
    settings = SchedulerSettings(
        database_url=postgres.url("no_such_database"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
    )
    (readyz,) = await call(settings, "/readyz")
    assert readyz.status_code == 503
    assert readyz.json()["checks"]["database"].startswith("error")


async def test_every_answer_carries_a_request_id_and_keeps_the_callers(make_database, broker):
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
    )
    mine, generated = await call(settings, "/healthz", "/nothing-here", headers=None)
    assert len(mine.headers["x-request-id"]) == 36
    assert generated.status_code == 404
    (echoed,) = await call(settings, "/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
