"""The calendar loop: announces the status changes that no fact causes, only the passing of
days (an invoice's due date passes, a scheduled payment's grace ends with nothing paid),
with an ``invoice.status_changed`` written to the outbox in the claiming transaction.

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
interval (a change that an operation brought sooner is then found by the next poll).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import Counter

from relance.common.clock import Clock, start_of_local_day
from relance.common.db import Database
from relance.common.events import Event
from relance.common.events.invoice_events import InvoiceStatusChanged
from relance.common.logging import get_logger
from relance.common.outbox import add_events
from relance.invoice_api import repository as repo
from relance.invoice_api.status import StatusFacts, invoice_status, next_calendar_change

log = get_logger(__name__)
SOURCE = "invoice-api"
MIN_SLEEP_SECONDS = 0.2

STATUS_CHANGES = Counter(
    "relance_calendar_status_changes_total",
    "Invoice status changes made by the calendar alone, announced as invoice.status_changed",
)


def status_facts(row: Any) -> StatusFacts:
    """The facts status.py reads, from an invoice row."""
    return StatusFacts(
        sent_at=row.sent_at,
        total=row.total,
        paid=row.paid,
        due_date=row.due_date,
        in_collection=row.in_collection_at is not None,
        scheduled_until=row.scheduled_until,
    )


@dataclass(frozen=True, slots=True)
class Tracking:
    """What an invoice stores for the calendar loop, given its facts and today."""

    status_announced: str
    next_status_change_at: datetime | None

    def values(self) -> dict[str, Any]:
        return {
            "status_announced": self.status_announced,
            "next_status_change_at": self.next_status_change_at,
        }


def tracking(facts: StatusFacts, today: date, timezone: str) -> Tracking:
    """The status as of ``today`` (the organization's date) and the instant the calendar
    next changes it (midnight in ``timezone``), or None if it never will."""
    change = next_calendar_change(facts, today)
    return Tracking(
        status_announced=invoice_status(facts, today).value,
        next_status_change_at=None if change is None else start_of_local_day(change, timezone),
    )


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
        """Claim one batch of invoices whose calendar change is due, announce those whose
        status did change, and store when each one changes next; return how many."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            claimed = await repo.claim_status_changes(session, now, self._batch_size)
            events, updates = [], []
            for row in claimed:
                facts = status_facts(row)
                after = tracking(facts, now.astimezone(ZoneInfo(row.timezone)).date(), row.timezone)
                before = row.status_announced
                # None: an invoice from before this loop existed; its status is adopted
                if before is not None and before != after.status_announced:
                    events.append(
                        Event.new(
                            InvoiceStatusChanged(
                                invoice_id=row.id,
                                status=after.status_announced,
                                previous_status=before,
                                changed_at=row.next_status_change_at,
                            ),
                            source=SOURCE,
                            organization_id=row.organization_id,
                            time=now,
                        )
                    )
                updates.append(
                    {"organization_id": row.organization_id, "id": row.id, **after.values()}
                )
            await repo.set_status_tracking(session, updates)
            await add_events(session, events)
        STATUS_CHANGES.inc(len(events))
        self.announced += len(events)
        return len(claimed)

    async def _seconds_to_next_change(self) -> float:
        async with self._database.transaction() as session:
            next_at = await repo.next_status_change_at(session)
        if next_at is None:
            return self._poll_seconds
        # a change already due is one another replica holds locked right now: look again
        # shortly rather than at once, or every replica would spin while that lock lasts
        wait = max((next_at - self._clock.now()).total_seconds(), MIN_SLEEP_SECONDS)
        return min(wait, self._poll_seconds)
