"""The service's database: one async SQLAlchemy engine on asyncpg, sessions per unit of work.

A pooled connection is not pinged at checkout (the pre-ping of SQLAlchemy's asyncpg dialect
costs three round trips: BEGIN, a query, ROLLBACK). asyncpg notices a connection that the
server closed (a restart, an idle timeout, ``pg_terminate_backend``) when the socket ends, so
a checkout only looks at that, which costs nothing, and replaces the connection if it is
closed. A connection lost while in use fails its request, as it would have after a ping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn


class Database:
    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        """``pool_size`` connections at most, opened when first needed and then kept: no
        overflow connections, which the pool closes as soon as they are returned, so that a
        busy service opened and closed a connection (a server process) every few requests."""
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        event.listen(self.engine.sync_engine.pool, "checkout", _refuse_closed_connection)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool as asyncpg's own, outside any transaction: each statement
        commits on its own (a statement whose CTEs write several tables is one transaction).

        For a hot path of one or two statements, where SQLAlchemy's work around each one
        costs more than the round trip. The connection goes back to the pool afterwards,
        unless it may not be fit to serve again: closed, left in a transaction, or the block
        was interrupted by a cancellation or a connection error; it is then discarded.
        """
        pooled = await self.engine.raw_connection()
        connection: asyncpg.Connection = pooled.driver_connection
        try:
            yield connection
        except BaseException as error:
            if _in_doubt(connection, error):
                pooled.invalidate(error if isinstance(error, Exception) else None)
            raise
        else:
            if _in_doubt(connection, None):
                pooled.invalidate()
        finally:
            await greenlet_spawn(pooled.close)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _in_doubt(connection: asyncpg.Connection, error: BaseException | None) -> bool:
    return (
        connection.is_closed()
        or connection.is_in_transaction()
        or (error is not None and not isinstance(error, Exception))  # cancelled mid-statement?
        or isinstance(error, asyncpg.InterfaceError | OSError | TimeoutError)
    )


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a connection the server closed is replaced (the pool retries)."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def asyncpg_url(url: str) -> str:
    """The SQLAlchemy URL on asyncpg for any PostgreSQL URL (postgresql://, postgres://)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def asyncpg_dsn(url: str) -> str:
    """The plain libpq-style DSN asyncpg takes, from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
