"""The scheduler as it runs: it reads invoice events from the broker, plans, fires, and its
events reach the broker for the notifier and invoice-api."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest_asyncio

from relance.common.clock import FrozenClock
from relance.common.events import Event, to_record
from relance.common.events.invoice_events import InvoiceSent, PaymentReported
from relance.common.events.reminder_events import TOPIC as REMINDER_EVENTS
from relance.common.events.types import CustomerSnapshot, OrganizationSnapshot
from relance.common.kafka import EventProducer
from relance.common.service import create_app
from relance.devstack.testing import wait_for_events
from relance.scheduler.app import SPEC
from relance.scheduler.settings import SchedulerSettings

from ..conftest import ORG, invoice_snapshot

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def running(make_database, broker) -> AsyncIterator[None]:
    settings = SchedulerSettings(
        database_url=await make_database("relance.scheduler"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        outbox_poll_seconds=0.1,
        firing_poll_seconds=0.1,
    )
    app = create_app(SPEC, settings, FrozenClock(NOW))
    async with app.router.lifespan_context(app):
        yield


async def publish(bootstrap: str, *events: Event) -> None:
    producer = EventProducer(bootstrap, client_id="invoice-api-stand-in")
    await producer.start()
    try:
        await producer.send_many(to_record(e) for e in events)
    finally:
        await producer.stop()


def invoice_event(data, at: datetime = NOW) -> Event:
    return Event.new(data, source="invoice-api", organization_id=ORG, time=at)


async def test_an_invoice_sent_through_the_broker_is_planned_fired_and_stopped(running, broker):
    invoice_id = uuid.uuid4()
    sent = InvoiceSent(
        invoice_id=invoice_id,
        organization=OrganizationSnapshot(id=ORG, name="Atelier"),
        customer=CustomerSnapshot(id=uuid.uuid4(), name="Martin", email="m@example.com"),
        invoice=invoice_snapshot(
            sent_at=NOW - timedelta(seconds=1), due=NOW.date() + timedelta(30)
        ),
    )
    await publish(broker.bootstrap_servers, invoice_event(sent))

    events = await wait_for_events(broker.bootstrap_servers, REMINDER_EVENTS, 2, within=40)
    by_type = {e.type: e for e in events}
    assert set(by_type) == {"reminder.planned", "reminder.due"}
    planned, due = by_type["reminder.planned"].data, by_type["reminder.due"].data
    assert [s.kind for s in planned.steps][:3] == ["issuance", "pre_due", "due"]
    assert due.step_id == planned.steps[0].step_id  # issuance goes at once
    assert by_type["reminder.due"].organization_id == ORG
    assert by_type["reminder.due"].subject == str(invoice_id)

    paid = PaymentReported(
        invoice_id=invoice_id,
        payment_id=uuid.uuid4(),
        amount=Decimal("1200.00"),
        currency="EUR",
        paid_on=NOW.date(),
        total=Decimal("1200.00"),
        paid=Decimal("1200.00"),
        balance=Decimal("0.00"),
    )
    await publish(broker.bootstrap_servers, invoice_event(paid))
    events = await wait_for_events(broker.bootstrap_servers, REMINDER_EVENTS, 3, within=30)
    last_plan = [e for e in events if e.type == "reminder.planned"][-1].data
    assert [s.status for s in last_plan.steps][1:] == ["cancelled"] * 5
