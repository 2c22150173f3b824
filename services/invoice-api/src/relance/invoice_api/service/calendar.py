"""The status changes the calendar makes (no fact changes, only the day): announcing those
that are due, for every organization at once. ``workers.CalendarChanges`` runs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events import Event
from relance.common.events.invoice_events import InvoiceStatusChanged
from relance.common.outbox import add_events
from relance.invoice_api import repository as repo
from relance.invoice_api.service.tenant import SOURCE
from relance.invoice_api.status import status_facts, tracking


@dataclass(frozen=True, slots=True)
class CalendarBatch:
    claimed: int
    announced: int


async def announce_due(session: AsyncSession, now: datetime, limit: int) -> CalendarBatch:
    """Claim up to ``limit`` invoices whose calendar change is due, announce those whose
    status did change, and store when each one changes next."""
    claimed = await repo.claim_status_changes(session, now, limit)
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
        updates.append({"organization_id": row.organization_id, "id": row.id, **after.values()})
    await repo.set_status_tracking(session, updates)
    await add_events(session, events)
    return CalendarBatch(claimed=len(claimed), announced=len(events))


async def next_change_at(session: AsyncSession) -> datetime | None:
    """When the calendar next changes an invoice's status, of any organization."""
    return await repo.next_status_change_at(session)
