"""invoice-api reading its topics for real: a plan the scheduler publishes on the broker
shows on the invoice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from relance.common.events import Event, to_record
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.events.types import StepKind, StepStatus, StepView
from relance.common.kafka import EventProducer


@pytest.fixture
def consumers() -> bool:
    return True


async def test_the_consumer_applies_a_plan_published_on_the_broker(api, broker):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice()
    steps = tuple(
        StepView(
            step_id=uuid.uuid4(),
            kind=kind,
            severity=severity,
            scheduled_for=datetime(2026, 3, day, 8, 0, tzinfo=UTC),
            status=status,
            goes_at=datetime(2026, 3, day, 8, 0, tzinfo=UTC) if status == "planned" else None,
        )
        for kind, severity, day, status in [
            (StepKind.ISSUANCE, 0, 2, StepStatus.SKIPPED),
            (StepKind.PRE_DUE, 1, 16, StepStatus.PLANNED),
            (StepKind.DUE, 2, 31, StepStatus.PLANNED),
        ]
    )
    event = Event.new(
        ReminderPlanned(invoice_id=uuid.UUID(invoice["id"]), steps=steps),
        source="scheduler",
        organization_id=uuid.UUID(org["id"]),
        time=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    producer = EventProducer(broker.bootstrap_servers, client_id="scheduler-stand-in")
    await producer.start()
    try:
        await producer.send_many([to_record(event)])
    finally:
        await producer.stop()

    shown: dict = {}
    for _ in range(150):
        shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
        if shown["next_step"]:
            break
        await asyncio.sleep(0.2)
    assert shown["next_step"]["kind"] == "pre_due"
    assert shown["next_step"]["scheduled_for"] == "2026-03-16T08:00:00Z"
    assert shown["next_step"]["held"] is False
