"""How a Relance service is put together and started: the same for all four.

A service describes itself with a :class:`ServiceSpec` (its name, settings, the topics it
reads and the handler of each event type, its HTTP routers). :func:`create_app` wires the
database, the outbox relay and the consumer loop around it; :func:`main` is its command
line (``serve`` and ``migrate``).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import gc
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from relance.common.clock import Clock, SystemClock
from relance.common.db import Database
from relance.common.errors import ERROR_HANDLERS
from relance.common.events import organization_events
from relance.common.health import NotReady, RequestContextMiddleware, platform_router
from relance.common.kafka import EventConsumer, EventProducer, Handler
from relance.common.logging import configure_logging, get_logger
from relance.common.migrations import upgrade
from relance.common.outbox import OutboxRelay
from relance.common.settings import ServiceSettings
from relance.common.textguard import TextGuard, http_error, validation_failed
from relance.common.tracing import TracingSettingsError, configure_tracing, shutdown_tracing

log = get_logger(__name__)


STOP_SECONDS = 10.0  # how long a stopping service waits for each of its parts


S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class ServiceSpec(Generic[S]):
    name: str
    package: str
    settings_cls: type[S]
    description: str
    consumes: tuple[str, ...] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    routers: Sequence[APIRouter] = ()
    exception_handlers: Mapping[type[Exception], Any] = field(default_factory=dict)
    # long-running loops of the service besides relay and consumer, restarted if they fail
    workers: Mapping[str, Callable[[Runtime[S]], Awaitable[None]]] = field(default_factory=dict)


class Runtime(Generic[S]):
    """The long-lived parts of a running service, started and stopped together; its
    ``settings`` are the service's own class, so no code needs to narrow them."""

    def __init__(self, spec: ServiceSpec[S], settings: S, clock: Clock) -> None:
        self.spec = spec
        self.settings = settings
        self.clock = clock
        self.database = Database(settings.database_url)
        self.producer = EventProducer(
            settings.kafka_bootstrap_servers, client_id=f"relance-{spec.name}"
        )
        self.relay = OutboxRelay(
            self.database,
            self.producer,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: EventConsumer | None = None

    async def start(self) -> None:
        self._tasks.append(
            asyncio.create_task(self._keep_running("outbox relay", self._relay), name="relay")
        )
        if self.consumes:
            self._tasks.append(
                asyncio.create_task(self._keep_running("consumer", self._consume), name="consumer")
            )
        for name, worker in self.spec.workers.items():
            self._tasks.append(
                asyncio.create_task(
                    self._keep_running(name, functools.partial(worker, self)), name=name
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # a task stuck in a library's cancellation must not hang the shutdown: name it
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in stuck:
                log.error(
                    "task did not stop in time, abandoned",
                    task=task.get_name(),
                    awaiting=" > ".join(awaited_frames(task.get_coro())),
                )
        await self.producer.stop(give_up_after=STOP_SECONDS)
        await self.database.dispose()

    async def check_broker(self) -> None:
        await self.producer.ping()

    @property
    def consumes(self) -> bool:
        return bool(self.spec.consumes) and self.settings.run_consumers

    async def check_consumer(self) -> None:
        """Ready once the consumer group is formed and has applied the organization events
        that were there: before that, a key made a moment ago may be unknown here."""
        if self._consumer is None or not self._consumer.joined:
            raise NotReady("the consumer has not joined its group yet")
        if not self._consumer.caught_up:
            raise NotReady("the consumer is catching up with the organization events")

    async def _relay(self) -> None:
        if not self.producer.started:
            await self.producer.start()
        await self.relay.run()

    async def _consume(self) -> None:
        consumer = EventConsumer(
            database=self.database,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"relance-{self.spec.name}",
            topics=self.spec.consumes,
            handlers=self.spec.handlers,
            catch_up_topics=(organization_events.TOPIC,),
        )
        self._consumer = consumer
        await consumer.start()
        try:
            await consumer.run()
        finally:
            # leave the group at once so that partitions move without waiting for a timeout
            await asyncio.shield(consumer.stop())

    async def _keep_running(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` until it returns (it has nothing to do), restarting it if it fails."""
        delay = 1.0
        while True:
            try:
                await work()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(f"{what} stopped, restarting", error=repr(exc), retry_in_seconds=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


def awaited_frames(coro: Any) -> list[str]:
    """Where a coroutine waits, outermost first: what a stuck task is stuck on."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return frames


def create_app(
    spec: ServiceSpec[S], settings: S | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or spec.settings_cls()
    runtime = Runtime(spec, settings, clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        freeze_startup_objects()
        log.info("service started", port=settings.port)
        try:
            yield
        finally:
            await runtime.stop()
            shutdown_tracing()
            log.info("service stopped")

    app = FastAPI(title=f"Relance {spec.name}", description=spec.description, lifespan=lifespan)
    app.state.runtime = runtime
    # every request's text is checked before any route sees it (textguard.py): a field
    # added tomorrow cannot forget it. Added first, so it runs inside the request context.
    app.add_middleware(TextGuard, routers=spec.routers)
    app.add_middleware(RequestContextMiddleware)
    # FastAPI tries the routes in order, each at some cost: the service's own come first
    for router in spec.routers:
        app.include_router(router)
    readiness = {"database": runtime.database.ping, "broker": runtime.check_broker}
    if runtime.consumes:
        readiness["consumer"] = runtime.check_consumer
    app.include_router(platform_router(readiness))
    # errors that quote the input cannot fail themselves on a surrogate or non-UTF-8 bytes
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for exception, handler in {**ERROR_HANDLERS, **spec.exception_handlers}.items():
        app.add_exception_handler(exception, handler)
    return app


_startup_frozen = False


def freeze_startup_objects() -> None:
    """Put what starting made (modules, the app, its routes and models: most of the heap) out
    of the garbage collector's sight, once per process. A full collection then scans only
    what was made since, instead of taking about 100 ms every thousand requests or so."""
    global _startup_frozen
    if not _startup_frozen:
        gc.collect()
        gc.freeze()
        _startup_frozen = True


def main(spec: ServiceSpec[Any], argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"relance-{spec.name}",
        description=spec.description,
        epilog="Configuration comes from the environment: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, "
        "SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_STARTTLS, ADMIN_TOKEN, HOST, "
        "PORT, LOG_LEVEL, OUTBOX_POLL_SECONDS, OUTBOX_BATCH_SIZE, RUN_CONSUMERS. Tracing is off "
        "unless OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT is set.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve", help="run the HTTP API, the outbox relay and the consumers (default)"
    )
    commands.add_parser("migrate", help="bring the service's database schema up to date, then exit")
    args = parser.parse_args(argv)
    settings = spec.settings_cls()
    configure_logging(spec.name, settings.log_level)
    try:
        tracing = configure_tracing(spec.name)
    except TracingSettingsError as exc:
        print(f"relance-{spec.name}: {exc}", file=sys.stderr)
        return 2
    if tracing:
        log.info("tracing on: spans are exported as the OTEL_* variables say")
    if args.command == "migrate":
        upgrade(spec.package, settings.database_url)
        log.info("database schema up to date")
        return 0
    if not port_is_free(settings.host, settings.port):
        print(
            f"relance-{spec.name}: port {settings.port} on {settings.host} is already in use; "
            "stop what uses it or set PORT to another port",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        create_app(spec, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # the standard event loop everywhere: uvloop, when a dev tool pulls it in, would
        # make development differ from production, which does not install it
        loop="asyncio",
    )
    return 0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True
