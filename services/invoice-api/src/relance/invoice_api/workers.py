"""The long-running loops of invoice-api: the calendar loop, which announces the status
changes that no fact causes, only the passing of days (an invoice's due date passes, a
scheduled payment's grace ends with nothing paid), with an ``invoice.status_changed``
written to the outbox in the claiming transaction (``service.calendar``).

The status itself stays derived (status.py). Each invoice stores only what others were last
told its status is (``status_announced``) and when the calendar next changes it
(``next_status_change_at``: midnight where the organization is, on the day
``next_calendar_change`` names). Every change of an invoice's facts sets both again, in its
own transaction, since its own event tells the new status.

Any number of replicas may run the loop: a claim takes only rows no other transaction holds
(``FOR UPDATE SKIP LOCKED``) and moves their ``next_status_change_at`` before it commits, so
each change is announced once; a request changing the same invoice waits for the claim's
commit (it locks the row too), then sets both columns from the facts it leaves. Between
claims the loop sleeps until the next change is due, and never longer than the poll
interval (a change that a use case brought sooner is then found by the next poll).
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter

from relance.common.clock import Clock, seconds_until
from relance.common.db import Database
from relance.common.logging import get_logger
from relance.common.service import Runtime
from relance.invoice_api.service import calendar
from relance.invoice_api.settings import InvoiceApiSettings

log = get_logger(__name__)
MIN_SLEEP_SECONDS = 0.2

STATUS_CHANGES = Counter(
    "relance_calendar_status_changes_total",
    "Invoice status changes made by the calendar alone, announced as invoice.status_changed",
)


async def announce_calendar_changes(runtime: Runtime[InvoiceApiSettings]) -> None:
    """The calendar loop of this replica, unless ``RUN_CALENDAR`` is false."""
    settings = runtime.settings
    if not settings.run_calendar:
        return
    await CalendarChanges(
        runtime.database,
        runtime.clock,
        batch_size=settings.calendar_batch_size,
        poll_seconds=settings.calendar_poll_seconds,
    ).run()


class CalendarChanges:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        batch_size: int = 500,
        poll_seconds: float = 10.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self.announced = 0

    async def run(self) -> None:
        while True:
            try:
                while await self.announce_due() == self._batch_size:
                    pass
                sleep = await self._seconds_to_next_change()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not announce calendar status changes", error=repr(exc))
                sleep = self._retry_seconds
            await asyncio.sleep(sleep)

    async def announce_due(self) -> int:
        """Announce one batch of due calendar changes, in one transaction; return how many
        invoices it claimed."""
        async with self._database.transaction() as session:
            batch = await calendar.announce_due(session, self._clock.now(), self._batch_size)
        STATUS_CHANGES.inc(batch.announced)
        self.announced += batch.announced
        return batch.claimed

    async def _seconds_to_next_change(self) -> float:
        async with self._database.transaction() as session:
            next_at = await calendar.next_change_at(session)
        # a change already due is one another replica holds locked right now: look again
        # shortly rather than at once, or every replica would spin while that lock lasts
        return seconds_until(
            next_at, self._clock.now(), at_most=self._poll_seconds, at_least=MIN_SLEEP_SECONDS
        )
