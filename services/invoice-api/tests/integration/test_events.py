"""What leaves invoice-api as events, read back from the real broker, and the read model
kept from the events other services publish."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from relance.common.events import Event, invoice_events, organization_events
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.payment_events import PaymentMatched, PaymentSuggested
from relance.common.events.reminder_events import ReminderPlanned
from relance.common.events.types import HoldReason, StepKind, StepStatus, StepView
from relance.devstack.testing import wait_for_events

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_sending_an_invoice_emits_invoice_sent_once_with_what_consumers_need(api, broker):
    await api.as_new_organization(sender_email="factures@dupont.example")
    customer = await api.customer(locale="en", ibans=["FR7630006000011234567890189"])
    invoice = await api.invoice(customer_id=customer["id"], payment_reference="RF18539007547034")
    await api.post(f"/v1/invoices/{invoice['id']}/send")
    await api.post(f"/v1/invoices/{invoice['id']}/send")  # refused: no second event

    events = await wait_for_events(broker.bootstrap_servers, invoice_events.TOPIC, 1)
    sent = [e for e in events if e.type == "invoice.sent"]
    assert len(sent) == 1
    data = sent[0].data
    assert str(data.invoice_id) == invoice["id"]
    assert data.imported is False
    assert data.customer.email == "compta@martin.example"
    assert data.customer.locale == "en"
    assert data.customer.ibans == ("FR7630006000011234567890189",)
    assert data.invoice.balance == Decimal("1200.00")
    assert data.invoice.due_date.isoformat() == "2026-03-31"
    assert data.invoice.payment_reference == "RF18539007547034"
    assert data.organization.sender_email == "factures@dupont.example"
    assert data.organization.country == "FR"
    assert sent[0].source == "invoice-api"


async def test_an_imported_invoice_emits_invoice_sent_once_as_of_its_sent_at(api, broker):
    org = await api.as_new_organization(sender_email="factures@dupont.example")
    customer = await api.customer(locale="en", external_id="cust-1")
    invoice = await api.invoice(
        customer_id=customer["id"],
        sent_at="2026-02-01T10:00:00+01:00",
        issue_date="2026-02-01",
        due_date="2026-02-28",
        total="99.9",
        external_id="erp-1",
        invoice_text="Pain, février",
    )

    events = await wait_for_events(broker.bootstrap_servers, invoice_events.TOPIC, 1)
    (sent,) = [e for e in events if e.type == "invoice.sent"]
    assert sent.subject == invoice["id"]
    assert sent.source == "invoice-api"
    assert str(sent.organization_id) == org["id"]
    data = sent.data
    assert data.imported is True
    assert data.organization.sender_email == "factures@dupont.example"
    assert (data.customer.name, data.customer.locale, data.customer.external_id) == (
        "Boulangerie Martin",
        "en",
        "cust-1",
    )
    assert data.invoice.sent_at == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    assert (data.invoice.total, data.invoice.paid, data.invoice.balance) == (
        Decimal("99.90"),
        Decimal("0.00"),
        Decimal("99.90"),
    )
    assert (data.invoice.external_id, data.invoice.invoice_text) == ("erp-1", "Pain, février")
    assert data.invoice.due_date.isoformat() == "2026-02-28"


async def test_each_change_emits_its_event_in_order_for_the_invoice(api, broker):
    await api.as_new_organization()
    invoice = await api.sent_invoice(total="300.00")
    path = f"/v1/invoices/{invoice['id']}"
    await api.post(f"{path}/payments", {"amount": "100.00", "paid_on": "2026-03-03"})
    await api.post(f"{path}/payment-schedule", {"planned_on": "2026-03-20", "amount": "200.00"})
    await api.patch(path, {"due_date": "2026-04-15"})
    await api.post(f"{path}/reminders/suspend", {"reason": "accord amiable"})
    await api.post(f"{path}/reminders/suspend")  # already suspended: nothing more

    events = await wait_for_events(broker.bootstrap_servers, invoice_events.TOPIC, 5)
    mine = [e for e in events if e.subject == invoice["id"]]
    assert [e.type for e in mine] == [
        "invoice.sent",
        "payment.reported",
        "payment.scheduled",
        "invoice.updated",
        "reminders.suspended",
    ]
    reported = mine[1].data
    assert (reported.amount, reported.paid, reported.balance) == (
        Decimal("100.00"),
        Decimal("100.00"),
        Decimal("200.00"),
    )
    assert mine[3].data.previous_due_date.isoformat() == "2026-03-31"
    assert mine[3].data.invoice.due_date.isoformat() == "2026-04-15"
    assert mine[4].data.reason == "accord amiable"


async def test_creating_an_organization_tells_the_other_services_its_key_hash(api, broker):
    org = await api.as_new_organization(country="BE", timezone="Europe/Brussels")
    events = await wait_for_events(broker.bootstrap_servers, organization_events.TOPIC, 1)
    (saved,) = events
    assert str(saved.data.organization_id) == org["id"]
    assert saved.data.organization.country == "BE"
    assert org["api_key"] not in str(saved.data.model_dump())
    assert len(saved.data.api_key_sha256) == 64


async def apply(api, event: Event) -> None:
    """Hand an event to the service's handler as its consumer loop would."""
    runtime = api.app.state.runtime
    handler = runtime.spec.handlers[event.type]
    async with runtime.database.transaction() as session:
        await handler(session, event)


def event_for(org: dict, payload) -> Event:
    return Event.new(payload, source="tests", organization_id=uuid.UUID(org["id"]), time=WHEN)


def plan(invoice_id: str, statuses: list[StepStatus]) -> tuple[StepView, ...]:
    kinds = [StepKind.ISSUANCE, StepKind.PRE_DUE, StepKind.DUE]
    return tuple(
        StepView(
            step_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{invoice_id}/{kind}"),
            kind=kind,
            severity=n,
            scheduled_for=datetime(2026, 3, 2 + 7 * n, 8, 0, tzinfo=UTC),
            status=status,
            goes_at=datetime(2026, 3, 2 + 7 * n, 8, 0, tzinfo=UTC) if status == "planned" else None,
        )
        for n, (kind, status) in enumerate(zip(kinds, statuses, strict=True))
    )


async def test_the_plan_shows_as_next_step_and_reminders_and_emails_in_the_activity(api):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice()
    steps = plan(invoice["id"], [StepStatus.PLANNED] * 3)
    invoice_id = uuid.UUID(invoice["id"])
    # the notifier's report on issuance arrives before the plan that lists it
    await apply(api, event_for(org, EmailSent(
        invoice_id=invoice_id, step_id=steps[0].step_id, kind=StepKind.ISSUANCE,
        message_id="<a@relance>", recipient="compta@martin.example", sent_at=WHEN,
    )))  # fmt: skip
    await apply(api, event_for(org, ReminderPlanned(invoice_id=invoice_id, steps=steps)))
    await apply(api, event_for(org, EmailFailed(
        invoice_id=invoice_id, step_id=steps[1].step_id, kind=StepKind.PRE_DUE,
        reason="550 mailbox unavailable", failed_at=WHEN,
    )))  # fmt: skip

    shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert shown["next_step"] == {
        "kind": "due",
        "scheduled_for": "2026-03-16T08:00:00Z",
        "planned_for": "2026-03-16T08:00:00Z",
        "held": False,
        "hold_reason": None,
        "goes_at": "2026-03-16T08:00:00Z",
    }
    reminders = (await api.get(f"/v1/invoices/{invoice['id']}/reminders")).json()["items"]
    assert [(r["kind"], r["status"]) for r in reminders] == [
        ("issuance", "sent"),
        ("pre_due", "failed"),
        ("due", "planned"),
    ]
    assert reminders[1]["reason"] == "550 mailbox unavailable"
    activity = (await api.get(f"/v1/invoices/{invoice['id']}/activity")).json()["items"]
    kinds = [a["kind"] for a in activity]
    assert kinds[:2] == ["email.failed", "email.sent"], "newest first"
    assert "invoice.sent" in kinds


async def test_a_suggested_match_flags_the_invoice_and_a_bank_match_pays_it_once(api):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice(total="500.00")
    invoice_id = uuid.UUID(invoice["id"])
    match_id = uuid.uuid4()
    await apply(api, event_for(org, PaymentSuggested(
        invoice_id=invoice_id, match_id=match_id, bank_reference="BANK-1",
        amount=Decimal("500.00"), currency="EUR", booked_on=WHEN.date(), confidence=0.8,
    )))  # fmt: skip
    flagged = await api.get("/v1/invoices", payment_detected="true")
    assert [i["id"] for i in flagged.json()["items"]] == [invoice["id"]]

    matched = event_for(org, PaymentMatched(
        invoice_id=invoice_id, match_id=match_id, bank_reference="BANK-1",
        amount=Decimal("500.00"), currency="EUR", booked_on=WHEN.date(), confirmed_by_person=True,
    ))  # fmt: skip
    await apply(api, matched)
    await apply(api, event_for(org, matched.data))  # the same match again, as a new event
    shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert shown["status"] == "paid"
    assert shown["paid"] == "500.00"
    assert shown["payment_detected"] is False


async def test_the_payment_a_bank_match_records_names_the_match(api, broker):
    # the payment-matcher knows by it which of its matches the balance already includes
    org = await api.as_new_organization()
    invoice = await api.sent_invoice(total="500.00")
    match_id = uuid.uuid4()

    await apply(api, event_for(org, PaymentMatched(
        invoice_id=uuid.UUID(invoice["id"]), match_id=match_id, bank_reference="BANK-1",
        amount=Decimal("200.00"), currency="EUR", booked_on=WHEN.date(),
    )))  # fmt: skip

    events = await wait_for_events(broker.bootstrap_servers, invoice_events.TOPIC, 2)
    (reported,) = [e for e in events if e.type == "payment.reported"]
    assert reported.data.match_id == match_id
    assert (reported.data.source, reported.data.balance) == ("bank", Decimal("300.00"))


async def test_events_about_another_organizations_invoice_change_nothing(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    intruder = await api.new_organization(name="Intruder")
    await apply(api, event_for(intruder, PaymentMatched(
        invoice_id=uuid.UUID(invoice["id"]), match_id=uuid.uuid4(), bank_reference="X",
        amount=Decimal("1200.00"), currency="EUR", booked_on=WHEN.date(),
    )))  # fmt: skip
    assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["paid"] == "0.00"


async def test_the_next_step_passes_over_a_step_the_catch_up_rule_will_skip(api):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice()
    invoice_id = uuid.UUID(invoice["id"])
    hold_end = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
    issuance, pre_due, due = plan(invoice["id"], [StepStatus.SENT] + [StepStatus.PLANNED] * 2)
    held = {"held": True, "hold_reason": HoldReason.PAYMENT_SCHEDULED}
    steps = (
        issuance,
        pre_due.model_copy(update={**held, "goes_at": None}),  # skipped when the hold ends
        due.model_copy(update={**held, "goes_at": hold_end}),
    )
    await apply(api, event_for(org, ReminderPlanned(invoice_id=invoice_id, steps=steps)))

    shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()["next_step"]
    assert (shown["kind"], shown["scheduled_for"], shown["held"]) == (
        "due",
        "2026-03-20T08:00:00Z",
        True,
    )


async def test_a_plan_from_a_scheduler_that_does_not_say_when_steps_go_shows_their_dates(api):
    org = await api.as_new_organization()
    invoice = await api.sent_invoice()
    older = [
        {k: v for k, v in step.model_dump(mode="json").items() if k not in ("held", "goes_at")}
        for step in plan(invoice["id"], [StepStatus.SENT] + [StepStatus.PLANNED] * 2)
    ]
    planned = ReminderPlanned.model_validate({"invoice_id": invoice["id"], "steps": older})
    await apply(api, event_for(org, planned))

    shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()["next_step"]
    assert (shown["kind"], shown["scheduled_for"], shown["held"]) == (
        "pre_due",
        "2026-03-09T08:00:00Z",
        False,
    )
