"""The tables every service database has, besides its own: outbox, inbox and dead letters.

Each service's first migration creates them with :func:`create_platform_tables`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

platform_metadata = MetaData()

# Events written in the same transaction as the change that caused them; the relay
# publishes them to Kafka and deletes them. What is here is the backlog.
outbox = Table(
    "outbox",
    platform_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Ids of the events this service has applied, written in the applying transaction.
inbox = Table(
    "inbox",
    platform_metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Messages no handler could apply, kept byte for byte for a person to look at.
dead_letters = Table(
    "dead_letters",
    platform_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("headers", JSONB, nullable=False),
    Column("event_id", Text),
    Column("event_type", Text),
    Column("error", Text, nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def create_platform_tables(connection: Connection) -> None:
    platform_metadata.create_all(connection)


def drop_platform_tables(connection: Connection) -> None:
    platform_metadata.drop_all(connection)
