"""What the scheduler does with invoice events: plans stored, changed, stopped, published."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceUpdated,
    PaymentReported,
    RemindersSuspended,
)
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.types import CustomerSnapshot, OrganizationSnapshot, StepKind

from ..conftest import ORG, at, invoice_snapshot

SENT = at("2026-03-02 10:00")  # Monday
DUE = date(2026, 3, 31)  # Tuesday: case A


def payment(invoice_id: uuid.UUID, balance: str) -> PaymentReported:
    return PaymentReported(
        invoice_id=invoice_id,
        payment_id=uuid.uuid4(),
        amount=Decimal("1200.00") - Decimal(balance),
        currency="EUR",
        paid_on=date(2026, 3, 10),
        total=Decimal("1200.00"),
        paid=Decimal("1200.00") - Decimal(balance),
        balance=Decimal(balance),
    )


def due_date_change(invoice_id: uuid.UUID, new_due: date) -> InvoiceUpdated:
    return InvoiceUpdated(
        invoice_id=invoice_id,
        organization=OrganizationSnapshot(id=ORG, name="Atelier"),
        customer=CustomerSnapshot(id=uuid.uuid4(), name="Martin"),
        invoice=invoice_snapshot(sent_at=SENT, due=new_due),
        previous_due_date=DUE,
    )


async def test_a_sent_invoice_gets_the_whole_plan_stored_and_published(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)

    steps = await scheduler.steps(invoice)
    assert [(s["kind"], s["scheduled_for"].date().isoformat()) for s in steps] == [
        ("issuance", "2026-03-02"),
        ("pre_due", "2026-03-16"),
        ("due", "2026-03-31"),
        ("escalation_1", "2026-04-08"),  # Easter Monday 6 April is not a business day
        ("escalation_2", "2026-04-15"),
        ("escalation_3", "2026-04-22"),
    ]
    assert {s["status"] for s in steps} == {"planned"}
    assert steps[0]["scheduled_for"] == SENT
    assert steps[1]["scheduled_for"] == at("2026-03-16 09:00")
    [published] = await scheduler.outbox("reminder.planned")
    assert published["invoice_id"] == str(invoice)
    assert [s["kind"] for s in published["steps"]] == [s["kind"] for s in steps]
    assert [s["step_id"] for s in published["steps"]] == [str(s["id"]) for s in steps]


async def test_an_imported_invoice_sends_no_issuance(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE, imported=True)
    statuses = await scheduler.statuses(invoice)
    assert statuses[0] == ("issuance", "skipped")
    assert {status for _, status in statuses[1:]} == {"planned"}


async def test_the_organization_reminder_time_and_zone_set_the_hour(scheduler):
    invoice = await scheduler.send(
        sent_at=SENT, due=DUE, timezone="America/New_York", reminder_time="14:30", country="US"
    )
    steps = await scheduler.steps(invoice)
    assert steps[2]["kind"] == "due"
    assert steps[2]["scheduled_for"].isoformat() == "2026-03-31T18:30:00+00:00"  # 14:30 EDT


async def test_a_repeated_invoice_sent_plans_once(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.send(sent_at=SENT, due=date(2026, 5, 1), invoice_id=invoice)
    assert len(await scheduler.steps(invoice)) == 6
    assert (await scheduler.steps(invoice))[2]["scheduled_for"].date() == DUE
    assert len(await scheduler.outbox("reminder.planned")) == 1


async def test_the_same_event_delivered_twice_is_applied_once(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    event = scheduler.event(RemindersSuspended(invoice_id=invoice, suspended_at=SENT))
    await scheduler.apply(event)
    await scheduler.apply(event)
    assert len(await scheduler.outbox("reminder.planned")) == 2  # the plan, then the stop


async def test_a_full_payment_cancels_every_waiting_step(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)  # issuance goes
    await scheduler.apply(payment(invoice, "0.00"))
    statuses = await scheduler.statuses(invoice)
    assert statuses[0] == ("issuance", "planned")  # handed to the notifier: not cancelled
    assert {status for _, status in statuses[1:]} == {"cancelled"}
    published = (await scheduler.outbox("reminder.planned"))[-1]
    assert {s["status"] for s in published["steps"][1:]} == {"cancelled"}
    assert published["steps"][1]["reason"] == "paid"
    assert await scheduler.fire_at(at("2026-05-01 09:00")) == []


async def test_a_part_payment_changes_nothing(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.apply(payment(invoice, "200.00"))
    assert {status for _, status in await scheduler.statuses(invoice)} == {"planned"}
    assert len(await scheduler.outbox("reminder.planned")) == 1


async def test_suspension_and_collection_stop_reminders_for_good(scheduler):
    suspended = await scheduler.send(sent_at=SENT, due=DUE)
    collected = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.apply(RemindersSuspended(invoice_id=suspended, suspended_at=SENT))
    await scheduler.apply(InvoiceHandedToCollection(invoice_id=collected, handed_at=SENT))
    # a later due date change does not bring them back
    await scheduler.apply(due_date_change(suspended, date(2026, 6, 30)))
    for invoice, reason in ((suspended, "suspended"), (collected, "in_collection")):
        steps = await scheduler.steps(invoice)
        assert {s["status"] for s in steps} == {"cancelled"}
        assert {s["reason"] for s in steps} == {reason}
    assert await scheduler.fire_at(at("2026-07-01 09:00")) == []


async def test_a_new_due_date_replans_from_the_send_date_and_keeps_what_went(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    fired = await scheduler.fire_at(at("2026-03-16 09:00"))  # issuance (caught up) and pre_due
    assert [f["kind"] for f in fired] == ["pre_due"]
    await scheduler.apply(due_date_change(invoice, date(2026, 4, 30)))  # Thursday
    steps = await scheduler.steps(invoice)
    assert [(s["kind"], s["status"], s["scheduled_for"].date().isoformat()) for s in steps] == [
        ("issuance", "skipped", "2026-03-02"),
        ("pre_due", "planned", "2026-03-16"),  # fired, awaiting the notifier: kept
        ("due", "planned", "2026-04-30"),
        ("escalation_1", "planned", "2026-05-11"),  # 1 and 8 May are holidays in France
        ("escalation_2", "planned", "2026-05-19"),  # 14 May too (Ascension)
        ("escalation_3", "planned", "2026-05-27"),  # and 25 May (Whit Monday)
    ]
    assert [s["position"] for s in steps] == list(range(6))
    assert (await scheduler.outbox("reminder.planned"))[-1]["steps"][2]["kind"] == "due"


async def test_events_of_another_organization_change_nothing(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    intruder = uuid.uuid4()
    await scheduler.apply(RemindersSuspended(invoice_id=invoice, suspended_at=SENT), intruder)
    await scheduler.apply(payment(invoice, "0.00"), intruder)
    [step_id] = [s["id"] for s in await scheduler.steps(invoice) if s["kind"] == "due"]
    await scheduler.apply(
        EmailFailed(
            invoice_id=invoice, step_id=step_id, kind=StepKind.DUE, reason="x", failed_at=SENT
        ),
        intruder,
    )
    assert {status for _, status in await scheduler.statuses(invoice)} == {"planned"}


async def test_the_notifier_outcomes_show_on_the_steps(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    steps = await scheduler.steps(invoice)
    await scheduler.fire_at(SENT)
    await scheduler.apply(
        EmailSent(
            invoice_id=invoice,
            step_id=steps[0]["id"],
            kind=StepKind.ISSUANCE,
            message_id="<x@relance>",
            recipient="m@example.com",
            sent_at=SENT,
        )
    )
    await scheduler.fire_at(at("2026-03-16 09:00"))
    await scheduler.apply(
        EmailFailed(
            invoice_id=invoice,
            step_id=steps[1]["id"],
            kind=StepKind.PRE_DUE,
            reason="550 mailbox unavailable",
            failed_at=at("2026-03-16 09:00"),
        )
    )
    published = (await scheduler.outbox("reminder.planned"))[-1]["steps"]
    assert published[0]["status"] == "sent"
    assert datetime.fromisoformat(published[0]["sent_at"]) == SENT
    assert (published[1]["status"], published[1]["reason"]) == (
        "failed",
        "550 mailbox unavailable",
    )
    assert published[2]["status"] == "planned"
