"""Status changes the calendar alone makes, announced once as ``invoice.status_changed``:
the app's own calendar loop runs against a frozen clock the tests move, and more loops
(as other replicas would) run beside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from relance.common.calendar import BusinessCalendar
from relance.common.clock import start_of_local_day
from relance.common.db import Database
from relance.common.events import invoice_events
from relance.devstack.testing import read_events, wait_for_events
from relance.invoice_api.workers import CalendarChanges


async def status_changes(broker: Any, count: int = 1, within: float = 20.0) -> list[Any]:
    """The ``invoice.status_changed`` events on the broker, once there are ``count``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        events = await read_events(broker.bootstrap_servers, invoice_events.TOPIC, idle_ms=300)
        changes = [e for e in events if e.type == "invoice.status_changed"]
        if len(changes) >= count or asyncio.get_running_loop().time() > deadline:
            return changes
        await asyncio.sleep(0.2)


@asynccontextmanager
async def replica(api: Any, **options: Any) -> AsyncIterator[CalendarChanges]:
    """Another replica's calendar loop: its own pool on the same database."""
    database = Database(api.app.state.runtime.database.url)
    try:
        yield CalendarChanges(database, api.clock, **options)
    finally:
        await database.dispose()


async def drain(loop: CalendarChanges) -> None:
    while await loop.announce_due():
        pass


async def test_the_day_after_the_due_date_in_the_organization_s_zone_one_change_goes_out(
    api, broker
):
    org = await api.as_new_organization(timezone="America/Los_Angeles")
    invoice = await api.sent_invoice(due_date="2026-03-31", external_id="erp-7")
    midnight = start_of_local_day(date(2026, 4, 1), "America/Los_Angeles")
    assert midnight == datetime(2026, 4, 1, 7, 0, tzinfo=UTC)  # not Paris', not UTC's
    async with replica(api) as other:
        api.clock.set(midnight - timedelta(seconds=1))  # still 31 March in Los Angeles
        assert await other.announce_due() == 0
        assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["status"] == "not_due"

        api.clock.set(midnight)
        (change,) = await status_changes(broker)
        assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["status"] == "to_collect"
        await drain(other)  # nothing left to claim: the app's loop or this one took it
    assert change.subject == invoice["id"]
    assert str(change.organization_id) == org["id"]
    assert change.source == "invoice-api"
    assert (change.data.previous_status, change.data.status) == ("not_due", "to_collect")
    assert change.data.changed_at == midnight
    api.clock.advance(timedelta(days=40))  # no further calendar change for it
    events = await read_events(broker.bootstrap_servers, invoice_events.TOPIC)
    assert len([e for e in events if e.type == "invoice.status_changed"]) == 1


async def test_several_replicas_announce_each_change_once(api, broker):
    await api.as_new_organization()
    invoices = [await api.sent_invoice(due_date="2026-03-31") for _ in range(24)]
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(replica(api, batch_size=5)) for _ in "abc"]
        api.clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # 2:00 in Paris, 1 April
        await asyncio.gather(*(drain(loop) for loop in replicas))
        await status_changes(broker, len(invoices))
    events = await read_events(broker.bootstrap_servers, invoice_events.TOPIC)
    changes = [e for e in events if e.type == "invoice.status_changed"]
    assert sorted(e.subject for e in changes) == sorted(i["id"] for i in invoices)
    assert {e.data.status for e in changes} == {"to_collect"}


async def test_a_scheduled_payment_whose_grace_ends_unpaid_changes_once(api, broker):
    await api.as_new_organization()
    unpaid = await api.sent_invoice(due_date="2026-03-10")
    partly = await api.sent_invoice(due_date="2026-03-10")
    paid = await api.post(
        f"/v1/invoices/{partly['id']}/payments", {"amount": "200.00", "paid_on": "2026-03-02"}
    )
    assert paid.status_code == 201, paid.text
    for invoice in (unpaid, partly):
        scheduled = await api.post(
            f"/v1/invoices/{invoice['id']}/payment-schedule", {"planned_on": "2026-04-02"}
        )
        assert scheduled.status_code == 201, scheduled.text
        assert scheduled.json()["status"] == "scheduled"

    # 2 April + 2 business days in France: 3 April, then 7 April (6 April is Easter Monday)
    until = BusinessCalendar("FR").add_business_days(date(2026, 4, 2), 2)
    assert until == date(2026, 4, 7)
    api.clock.set(start_of_local_day(until, "Europe/Paris") + timedelta(hours=12))
    async with replica(api) as other:
        assert await other.announce_due() == 0  # the last day of grace: still scheduled
        api.clock.set(start_of_local_day(until + timedelta(days=1), "Europe/Paris"))
        changes = await status_changes(broker, 2)
        await drain(other)
    by_invoice = {e.subject: (e.data.previous_status, e.data.status) for e in changes}
    assert by_invoice == {
        unpaid["id"]: ("scheduled", "to_collect"),
        partly["id"]: ("scheduled", "partially_paid"),
    }
    # the due date passing during the grace changed nothing: the status stayed scheduled
    events = await read_events(broker.bootstrap_servers, invoice_events.TOPIC)
    assert len([e for e in events if e.type == "invoice.status_changed"]) == 2


async def test_a_paid_invoice_and_a_draft_change_nothing_when_their_due_date_passes(api, broker):
    await api.as_new_organization()
    paid = await api.sent_invoice(due_date="2026-03-31")
    answer = await api.post(
        f"/v1/invoices/{paid['id']}/payments", {"amount": "1200.00", "paid_on": "2026-03-05"}
    )
    assert answer.status_code == 201, answer.text
    draft = await api.invoice(due_date="2026-03-31")
    unpaid = await api.sent_invoice(due_date="2026-03-31")

    api.clock.set(datetime(2026, 4, 1, 6, 0, tzinfo=UTC))
    (change,) = await status_changes(broker)
    assert change.subject == unpaid["id"]  # the only one: paid and draft have no change
    assert (await api.get(f"/v1/invoices/{paid['id']}")).json()["status"] == "paid"
    assert (await api.get(f"/v1/invoices/{draft['id']}")).json()["status"] == "draft"


async def test_a_due_date_moved_later_moves_the_change_with_it(api, broker):
    await api.as_new_organization()
    invoice = await api.sent_invoice(due_date="2026-03-31")
    moved = await api.patch(f"/v1/invoices/{invoice['id']}", {"due_date": "2026-04-30"})
    assert moved.status_code == 200, moved.text
    async with replica(api) as other:
        api.clock.set(datetime(2026, 4, 2, 9, 0, tzinfo=UTC))
        assert await other.announce_due() == 0  # nothing changes on 1 April any more
        api.clock.set(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
        (change,) = await status_changes(broker)
    assert change.data.changed_at == start_of_local_day(date(2026, 5, 1), "Europe/Paris")


async def test_a_due_date_moved_into_the_past_is_announced_at_once_and_only_then(api, broker):
    await api.as_new_organization()
    invoice = await api.sent_invoice(due_date="2026-03-31")
    api.clock.set(datetime(2026, 3, 20, 9, 0, tzinfo=UTC))
    moved = await api.patch(f"/v1/invoices/{invoice['id']}", {"due_date": "2026-03-15"})
    assert moved.json()["status"] == "to_collect"
    (change,) = await status_changes(broker)
    assert (change.data.previous_status, change.data.status) == ("not_due", "to_collect")
    assert change.data.changed_at == api.clock.now()
    api.clock.set(datetime(2026, 4, 2, 9, 0, tzinfo=UTC))  # past the old due date: no more
    async with replica(api) as other:
        assert await other.announce_due() == 0
    events = await read_events(broker.bootstrap_servers, invoice_events.TOPIC)
    assert len([e for e in events if e.type == "invoice.status_changed"]) == 1


async def test_a_payment_tells_the_status_it_leaves_by_the_status_rules(api, broker):
    await api.as_new_organization()
    invoice = await api.sent_invoice(due_date="2026-03-31")
    scheduled = await api.post(
        f"/v1/invoices/{invoice['id']}/payment-schedule", {"planned_on": "2026-03-20"}
    )
    assert scheduled.status_code == 201, scheduled.text
    for amount in ("200.00", "1000.00"):
        paid = await api.post(
            f"/v1/invoices/{invoice['id']}/payments", {"amount": amount, "paid_on": "2026-03-02"}
        )
        assert paid.status_code == 201, paid.text
    # invoice.sent, payment.scheduled and the two payment.reported
    events = await wait_for_events(broker.bootstrap_servers, invoice_events.TOPIC, 4)
    # a part payment while a payment is announced leaves it scheduled, not partially paid
    assert [e.data.status for e in events if e.type == "payment.reported"] == ["scheduled", "paid"]
