"""A payment that holds the reminders moves the next step the invoice shows: invoice-api and
the scheduler run in this process, each on its own real database, reading and writing the
real broker with their consumers on, and sharing a clock the test moves. The payment-matcher
is stood in for by events written to the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio

from relance.common.clock import FrozenClock
from relance.common.events import Event, Payload, to_record
from relance.common.events.payment_events import PaymentSuggested, SuggestionRejected
from relance.common.kafka import EventProducer
from relance.common.service import create_app
from relance.invoice_api.app import SPEC as INVOICE_API
from relance.invoice_api.settings import InvoiceApiSettings
from relance.scheduler.app import SPEC as SCHEDULER
from relance.scheduler.settings import SchedulerSettings

ADMIN = "held-steps-admin"


class Stack:
    def __init__(self, client: httpx.AsyncClient, clock: FrozenClock, bootstrap: str) -> None:
        self.client = client
        self.clock = clock
        self.bootstrap = bootstrap
        self.auth: dict[str, str] = {}
        self.org = ""

    async def start(self) -> None:
        org = await self.client.post(
            "/v1/organizations", json={"name": "Atelier"}, headers={"X-Admin-Token": ADMIN}
        )
        self.auth = {"Authorization": f"Bearer {org.json()['api_key']}"}
        self.org = org.json()["id"]

    async def imported_invoice(self) -> str:
        """Sent on Monday 2 March 2026 elsewhere, due Tuesday 31 March: no issuance email,
        pre_due on 16 March, due on 31 March, escalation_1 on 8 April (after Easter)."""
        customer = await self.client.post(
            "/v1/customers", json={"name": "Martin", "email": "m@example.com"}, headers=self.auth
        )
        answer = await self.client.post(
            "/v1/invoices",
            json={
                "customer_id": customer.json()["id"],
                "number": f"FA-{uuid.uuid4().hex[:8]}",
                "issue_date": "2026-03-02",
                "due_date": "2026-03-31",
                "total": "1200.00",
                "sent_at": "2026-03-02T10:00:00+01:00",
            },
            headers=self.auth,
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def next_step_once(
        self, invoice: str, accept: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The invoice's next step once ``accept`` takes it (the events take a moment)."""
        shown: dict[str, Any] = {}
        for _ in range(150):
            shown = (await self.client.get(f"/v1/invoices/{invoice}", headers=self.auth)).json()
            if shown["next_step"] and accept(shown["next_step"]):
                break
            await asyncio.sleep(0.2)
        return dict(shown["next_step"] or {})

    async def matcher_says(self, data: Payload) -> None:
        event = Event.new(
            data,
            source="payment-matcher",
            organization_id=uuid.UUID(self.org),
            time=self.clock.now(),
        )
        producer = EventProducer(self.bootstrap, client_id="matcher-stand-in")
        await producer.start()
        try:
            await producer.send_many([to_record(event)])
        finally:
            await producer.stop()


@pytest_asyncio.fixture
async def stack(make_database, broker) -> AsyncIterator[Stack]:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "outbox_poll_seconds": 0.2,
        "run_consumers": True,
    }
    invoice_api = create_app(
        INVOICE_API,
        InvoiceApiSettings(
            database_url=await make_database("relance.invoice_api"), admin_token=ADMIN, **common
        ),
        clock,
    )
    scheduler = create_app(
        SCHEDULER,
        SchedulerSettings(database_url=await make_database("relance.scheduler"), **common),
        clock,
    )
    async with AsyncExitStack() as running:
        for app in (invoice_api, scheduler):
            await running.enter_async_context(app.router.lifespan_context(app))
        client = await running.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=invoice_api), base_url="http://invoice-api"
            )
        )
        started = Stack(client, clock, broker.bootstrap_servers)
        await started.start()
        yield started


def at_kind(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda step: step["kind"] == kind and all(step[k] == v for k, v in fields.items())


async def test_a_payment_announced_for_a_date_moves_the_next_step_to_the_end_of_its_hold(
    stack: Stack,
):
    invoice = await stack.imported_invoice()
    before = await stack.next_step_once(invoice, at_kind("pre_due"))
    assert before["scheduled_for"] == "2026-03-16T08:00:00Z"
    assert before["held"] is False

    # paid on Friday 27 March, says the customer: held through Tuesday 31, so pre_due and
    # due wait, and on Wednesday 1 April at 9:00 only the later, due, goes
    answer = await stack.client.post(
        f"/v1/invoices/{invoice}/payment-schedule",
        json={"planned_on": "2026-03-27"},
        headers=stack.auth,
    )
    assert answer.status_code == 201, answer.text
    shown = await stack.next_step_once(invoice, at_kind("due"))
    assert shown == {
        "kind": "due",
        "scheduled_for": "2026-04-01T07:00:00Z",
        "planned_for": "2026-03-31T07:00:00Z",
        "held": True,
        "hold_reason": "payment_scheduled",
        "goes_at": "2026-04-01T07:00:00Z",
    }
    reminders = (
        await stack.client.get(f"/v1/invoices/{invoice}/reminders", headers=stack.auth)
    ).json()["items"]
    assert [(r["kind"], r["held"], r["goes_at"]) for r in reminders[:4]] == [
        ("issuance", False, None),
        ("pre_due", True, None),  # the catch-up rule will skip it
        ("due", True, "2026-04-01T07:00:00Z"),
        ("escalation_1", False, "2026-04-08T07:00:00Z"),
    ]


async def test_a_detected_payment_holds_the_next_step_until_a_person_rejects_it(stack: Stack):
    invoice = await stack.imported_invoice()
    await stack.next_step_once(invoice, at_kind("pre_due"))
    match = uuid.uuid4()
    await stack.matcher_says(
        PaymentSuggested(
            invoice_id=uuid.UUID(invoice),
            match_id=match,
            bank_reference="BANK-1",
            amount=Decimal("1200.00"),
            currency="EUR",
            booked_on=date(2026, 3, 2),
            confidence=0.8,
        )
    )
    held = await stack.next_step_once(invoice, at_kind("pre_due", held=True))
    # nothing goes until a person decides: no date to go, the plan's date kept for show
    assert held == {
        "kind": "pre_due",
        "scheduled_for": "2026-03-16T08:00:00Z",
        "planned_for": "2026-03-16T08:00:00Z",
        "held": True,
        "hold_reason": "payment_detected",
        "goes_at": None,
    }

    # rejected on Wednesday 8 April at 10:00: pre_due, due and escalation_1 are all past;
    # under the catch-up rule only escalation_1 goes, at once
    stack.clock.set(datetime(2026, 4, 8, 8, 0, tzinfo=UTC))
    await stack.matcher_says(SuggestionRejected(invoice_id=uuid.UUID(invoice), match_id=match))
    shown = await stack.next_step_once(invoice, at_kind("escalation_1"))
    assert shown["held"] is False
    assert shown["scheduled_for"] == "2026-04-08T08:00:00Z"
    assert shown["planned_for"] == "2026-04-08T07:00:00Z"
