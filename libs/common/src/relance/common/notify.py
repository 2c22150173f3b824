"""How a polling loop sleeps: until its poll interval passes or a NOTIFY wakes it early.

Used by the outbox relay (woken when events are written) and the scheduler's firing loop
(woken when a step is planned earlier than it was going to wake). A notification is only
a hint: it is lost when the listening connection drops, so every loop also polls.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from relance.common.db import asyncpg_dsn
from relance.common.logging import get_logger

log = get_logger(__name__)


async def wait_until_woken(wake: asyncio.Event, seconds: float) -> None:
    """Sleep until ``wake`` is set or ``seconds`` pass.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
    event is set, and the outbox relay then ran on after its service had stopped it.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(seconds, 0.0)):
            await wake.wait()


async def keep_listening(
    database_url: str, channel: str, wake: asyncio.Event, retry_seconds: float = 5.0
) -> None:
    """Hold a LISTEN connection on ``channel`` that sets ``wake``; reconnect when it drops."""
    while True:
        try:
            connection = await asyncpg.connect(asyncpg_dsn(database_url))
        except Exception as exc:
            log.warning("cannot listen for notifications, polling only", error=repr(exc))
            await asyncio.sleep(retry_seconds)
            continue
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _c, lost=lost: lost.set())
            await connection.add_listener(channel, lambda *_args: wake.set())
            await lost.wait()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
