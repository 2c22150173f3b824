"""The notifier on a fresh real database and a real SMTP catcher, with a clock the test
moves: events applied as its consumer applies them, and readers of its outbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, text

from relance.common.clock import FrozenClock
from relance.common.db import Database
from relance.common.events import Event, Payload
from relance.common.events.invoice_events import InvoiceSent
from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.reminder_events import ReminderDue
from relance.common.events.types import (
    CustomerSnapshot,
    InvoiceSnapshot,
    OrganizationSnapshot,
    StepKind,
)
from relance.common.inbox import claim_event
from relance.common.service import create_app
from relance.common.tables import outbox
from relance.common.tenancy import api_key_sha256
from relance.notifier.app import SPEC
from relance.notifier.email.mail import SmtpConnection
from relance.notifier.email.workers import EmailSending
from relance.notifier.handlers import HANDLERS
from relance.notifier.settings import NotifierSettings

KEY = "rk_partner-test-key"
ORG = uuid.UUID("00000000-0000-4000-8000-0000000000b0")
NOW = datetime(2026, 4, 15, 7, 0, tzinfo=UTC)  # 09:00 in Paris


class Notifier:
    def __init__(self, database: Database, clock: FrozenClock, smtp_port: int) -> None:
        self.database = database
        self.clock = clock
        self.smtp = SmtpConnection("127.0.0.1", smtp_port, timeout=5)
        self.sending = EmailSending(
            database,
            clock,
            self.smtp,
            mail_from="Relance <no-reply@relance.test>",
            retry_seconds=30,
            max_attempts=3,
            lease_seconds=600,
        )

    async def apply(self, data: Payload | Event[Any]) -> Event[Any]:
        event = (
            data
            if isinstance(data, Event)
            else Event.new(data, source="test", organization_id=ORG, time=self.clock.now())
        )
        async with self.database.transaction() as session:
            if await claim_event(session, event.id, event.type):
                await HANDLERS[event.type](session, event)
        return event

    async def invoice(
        self,
        *,
        email: str | None = "compta@martin.example",
        invoice_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        invoice_id = invoice_id or uuid.uuid4()
        await self.apply(
            InvoiceSent(
                invoice_id=invoice_id,
                organization=OrganizationSnapshot(
                    id=ORG, name="Atelier Dupont", sender_email="factures@dupont.example"
                ),
                customer=CustomerSnapshot(
                    id=uuid.uuid4(),
                    name="Boulangerie Martin",
                    email=email,
                    locale=fields.pop("locale", None),
                ),
                invoice=InvoiceSnapshot(
                    number=fields.pop("number", "FA-2026-0042"),
                    external_id=fields.pop("external_id", None),
                    currency="EUR",
                    total=Decimal("1200.00"),
                    paid=Decimal("0.00"),
                    balance=Decimal("1200.00"),
                    issue_date=date(2026, 3, 2),
                    due_date=date(2026, 3, 31),
                    sent_at=NOW - timedelta(days=40),
                ),
            )
        )
        return invoice_id

    def due(self, invoice_id: uuid.UUID, kind: StepKind = StepKind.ESCALATION_1) -> ReminderDue:
        return ReminderDue(
            invoice_id=invoice_id, step_id=uuid.uuid4(), kind=kind, severity=3, scheduled_for=NOW
        )

    async def send_all(self) -> None:
        while await self.sending.send_due():
            pass

    async def deliveries(self) -> list[dict[str, Any]]:
        async with self.database.transaction() as session:
            rows = await session.execute(text("SELECT * FROM deliveries ORDER BY step_id"))
            return [dict(row._mapping) for row in rows]

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        async with self.database.transaction() as session:
            rows = await session.execute(
                select(outbox.c.value)
                .where(outbox.c.event_type == event_type)
                .order_by(outbox.c.id)
            )
            return [json.loads(value) for (value,) in rows]


@pytest_asyncio.fixture
async def notifier(make_database, mail_catcher) -> AsyncIterator[Notifier]:
    database = Database(await make_database("relance.notifier"), pool_size=5)
    running = Notifier(database, FrozenClock(NOW), mail_catcher.port)
    yield running
    await running.smtp.close()
    await database.dispose()


@pytest.fixture
def clock(notifier: Notifier) -> FrozenClock:
    return notifier.clock


@pytest_asyncio.fixture
async def api(notifier, broker) -> AsyncIterator[httpx.AsyncClient]:
    await notifier.apply(
        OrganizationSaved(
            organization_id=ORG,
            organization=OrganizationSnapshot(id=ORG, name="Atelier Dupont"),
            api_key_sha256=api_key_sha256(KEY),
        )
    )
    settings = NotifierSettings(
        database_url=notifier.database.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        run_consumers=False,
        run_sending=False,
        run_webhooks=False,
    )
    app = create_app(SPEC, settings, notifier.clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://notifier",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as client,
    ):
        yield client
