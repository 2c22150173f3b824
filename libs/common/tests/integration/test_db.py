"""The database's pool on the real embedded PostgreSQL: no ping at checkout, yet a connection
the server closed is replaced; the driver's connection goes back to the pool only when fit."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from relance.common.db import Database, asyncpg_dsn


async def backend_pid(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(database: Database, pid: int) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(database.url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the pooled connection reads the end of its socket


async def test_a_connection_the_server_closed_is_replaced_at_checkout(database):
    first = await backend_pid(database)
    await terminate(database, first)
    assert await backend_pid(database) != first


async def test_the_driver_connection_is_reused_after_a_refused_statement_or_a_refusal(database):
    async with database.driver_connection() as connection:
        first = await connection.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with database.driver_connection() as connection:
            await connection.execute("SELECT 1 / 0")
    with pytest.raises(LookupError):
        async with database.driver_connection() as connection:
            raise LookupError("a business rule said no")
    async with database.driver_connection() as connection:
        assert await connection.fetchval("SELECT pg_backend_pid()") == first


async def test_the_driver_connection_is_discarded_when_it_may_be_unfit(database):
    used = []
    async with database.driver_connection() as connection:
        used.append(connection)
        await connection.execute("BEGIN")  # left open: never handed to another request

    async def cancelled_mid_statement() -> None:
        async with database.driver_connection() as connection:
            used.append(connection)
            await connection.execute("SELECT pg_sleep(10)")

    task = asyncio.create_task(cancelled_mid_statement())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [connection.is_closed() for connection in used] == [True, True]
    for _ in range(6):  # more than the pool holds
        async with database.driver_connection() as connection:
            assert connection not in used
            assert await connection.fetchval("SELECT 1") == 1
