"""invoice-api reading its topics for real: a plan the scheduler publishes on the broker
shows on the invoice."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from relance.common.events import to_record
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.events.types import StepStatus
from relance.common.kafka import EventProducer

from .test_events import event_for, plan


@pytest.fixture
def consumers() -> bool:
    return True


async def test_the_consumer_applies_a_plan_published_on_the_broker(api, broker):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice()
    steps = plan(invoice["id"], [StepStatus.SKIPPED, StepStatus.PLANNED, StepStatus.PLANNED])
    event = event_for(org, ReminderPlanned(invoice_id=uuid.UUID(invoice["id"]), steps=steps))
    producer = EventProducer(broker.bootstrap_servers, client_id="scheduler-stand-in")
    await producer.start()
    try:
        await producer.send_many([to_record(event)])
    finally:
        await producer.stop()
    for _ in range(100):
        shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
        if shown["next_step"]:
            break
        await asyncio.sleep(0.2)
    assert shown["next_step"]["kind"] == "pre_due"
