"""The scheduler on a fresh real database: events applied as its consumer applies them
(inbox claim and handler in one transaction), a clock the test moves, and readers of what
it wrote to its outbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, text

from relance.common.clock import FrozenClock
from relance.common.db import Database
from relance.common.events import Event, Payload
from relance.common.events.invoice_events import InvoiceSent
from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot, OrganizationSnapshot
from relance.common.inbox import claim_event
from relance.common.tables import outbox
from relance.scheduler.handlers import HANDLERS
from relance.scheduler.workers import StepFiring

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")


def at(text_: str) -> datetime:
    """An instant written as local Paris time, e.g. ``at("2026-03-02 10:00")``."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text_).replace(tzinfo=ZoneInfo("Europe/Paris"))


class Scheduler:
    def __init__(self, database: Database, clock: FrozenClock) -> None:
        self.database = database
        self.clock = clock
        self.firing = StepFiring(database, clock, batch_size=100, poll_seconds=0.1)

    def event(self, data: Payload, organization_id: uuid.UUID = ORG) -> Event[Any]:
        return Event.new(
            data, source="test", organization_id=organization_id, time=self.clock.now()
        )

    async def apply(
        self, data: Payload | Event[Any], organization_id: uuid.UUID = ORG
    ) -> Event[Any]:
        event = data if isinstance(data, Event) else self.event(data, organization_id)
        async with self.database.transaction() as session:
            if await claim_event(session, event.id, event.type):
                await HANDLERS[event.type](session, event)
        return event

    async def send(
        self,
        *,
        sent_at: datetime,
        due: date,
        imported: bool = False,
        invoice_id: uuid.UUID | None = None,
        organization_id: uuid.UUID = ORG,
        balance: str = "1200.00",
        **org: Any,
    ) -> uuid.UUID:
        invoice_id = invoice_id or uuid.uuid4()
        await self.apply(
            InvoiceSent(
                invoice_id=invoice_id,
                organization=OrganizationSnapshot(id=organization_id, name="Atelier", **org),
                customer=CustomerSnapshot(id=uuid.uuid4(), name="Martin", email="m@example.com"),
                invoice=invoice_snapshot(sent_at=sent_at, due=due, balance=balance),
                imported=imported,
            ),
            organization_id,
        )
        return invoice_id

    async def steps(self, invoice_id: uuid.UUID) -> list[dict[str, Any]]:
        async with self.database.transaction() as session:
            rows = await session.execute(
                text("SELECT * FROM steps WHERE invoice_id = :i ORDER BY position"),
                {"i": invoice_id},
            )
            return [dict(row._mapping) for row in rows]

    async def statuses(self, invoice_id: uuid.UUID) -> list[tuple[str, str]]:
        return [(s["kind"], s["status"]) for s in await self.steps(invoice_id)]

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        """The payloads of the events of this type written so far, oldest first."""
        async with self.database.transaction() as session:
            rows = await session.execute(
                select(outbox.c.value)
                .where(outbox.c.event_type == event_type)
                .order_by(outbox.c.id)
            )
            return [json.loads(value) for (value,) in rows]

    async def fire_at(self, when: datetime) -> list[dict[str, Any]]:
        """Move the clock to ``when``, fire everything due; the new ``reminder.due`` payloads."""
        before = len(await self.outbox("reminder.due"))
        self.clock.set(when)
        while await self.firing.fire_due():
            pass
        return (await self.outbox("reminder.due"))[before:]


def invoice_snapshot(*, sent_at: datetime, due: date, balance: str = "1200.00") -> InvoiceSnapshot:
    return InvoiceSnapshot(
        number="FA-2026-0042",
        currency="EUR",
        total=Decimal("1200.00"),
        paid=Decimal("1200.00") - Decimal(balance),
        balance=Decimal(balance),
        issue_date=sent_at.date(),
        due_date=due,
        sent_at=sent_at,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # Monday 2 March, 10:00 Paris


@pytest_asyncio.fixture
async def scheduler(make_database, clock) -> AsyncIterator[Scheduler]:
    database = Database(await make_database("relance.scheduler"), pool_size=5)
    yield Scheduler(database, clock)
    await database.dispose()
