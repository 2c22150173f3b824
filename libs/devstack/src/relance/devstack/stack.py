"""The embedded stack as one object: what ``make dev`` and the test fixtures start.

Every part is replaced by the real one when its variable is set: ``DATABASE_URL`` (a
server: each service gets its own database on it, named ``relance_<service>``),
``KAFKA_BOOTSTRAP_SERVERS``, ``SMTP_HOST``/``SMTP_PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from relance.common.db import asyncpg_dsn, asyncpg_url
from relance.common.events import TOPICS
from relance.common.kafka import ensure_topics
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.mailcatcher import MailCatcher
from relance.devstack.ports import require_free
from relance.devstack.postgres import EmbeddedPostgres, create_databases


@dataclass(frozen=True)
class Service:
    name: str
    default_port: int

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    @property
    def package(self) -> str:
        return f"relance.{self.module}"

    @property
    def database(self) -> str:
        return f"relance_{self.module}"


SERVICES = (
    Service("invoice-api", 8000),
    Service("scheduler", 8001),
    Service("notifier", 8002),
    Service("payment-matcher", 8003),
)

TOPIC_PARTITIONS = 6


@dataclass
class Stack:
    """Start with :meth:`start`, stop with :meth:`stop` (stops only what it started)."""

    data_dir: Path
    kafka_port: int
    smtp_port: int
    environ: Mapping[str, str] = field(default_factory=dict)
    fast_and_unsafe_database: bool = False

    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    mail: MailCatcher | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    bootstrap_servers: str = ""
    smtp_host: str = "127.0.0.1"

    def check_ports(self) -> None:
        if "KAFKA_BOOTSTRAP_SERVERS" not in self.environ:
            require_free(self.kafka_port, "Kafka broker", "stop what uses it or pass --kafka-port")
        if "SMTP_HOST" not in self.environ:
            require_free(self.smtp_port, "SMTP catcher", "stop what uses it or pass --smtp-port")

    def start(self) -> None:
        try:
            self._start_database()
            self._start_broker()
            self._start_mail()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.mail is not None:
            with contextlib.suppress(Exception):
                self.mail.stop()
            self.mail = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def smtp_port_in_use(self) -> int:
        return (
            int(self.environ.get("SMTP_PORT", self.smtp_port))
            if "SMTP_HOST" in self.environ
            else self.smtp_port
        )

    def _start_database(self) -> None:
        names = [service.database for service in SERVICES]
        external = self.environ.get("DATABASE_URL")
        if external:
            external = asyncpg_url(external)
            server = make_url(external)
            self.database_urls = {
                s.name: server.set(database=s.database).render_as_string(hide_password=False)
                for s in SERVICES
            }
            asyncio.run(create_databases(asyncpg_dsn(external), names))
            return
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres", fast_and_unsafe=self.fast_and_unsafe_database
        )
        self.postgres.create_databases(names)
        self.database_urls = {s.name: self.postgres.url(s.database) for s in SERVICES}

    def _start_broker(self) -> None:
        external = self.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            self.bootstrap_servers = external
        else:
            self.broker = EmbeddedBroker(self.kafka_port, self.data_dir / "logs" / "broker.log")
            self.bootstrap_servers = self.broker.bootstrap_servers
        partitions = int(self.environ.get("KAFKA_TOPIC_PARTITIONS", TOPIC_PARTITIONS))
        asyncio.run(ensure_topics(self.bootstrap_servers, TOPICS, partitions))

    def _start_mail(self) -> None:
        if "SMTP_HOST" in self.environ:
            self.smtp_host = self.environ["SMTP_HOST"]
            return
        self.mail = MailCatcher(self.mail_dir, self.smtp_port)
        self.mail.start()
