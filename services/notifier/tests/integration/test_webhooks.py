"""Partner webhooks: endpoints per organization, signed deliveries a partner can verify,
retries, replay, and a dead partner that slows nobody else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceStatusChanged,
    PaymentReported,
    PaymentScheduled,
    RemindersSuspended,
)
from relance.common.events.payment_events import PaymentMatched, PaymentSuggested
from relance.notifier.webhooks.partners import WEBHOOK_TYPES
from relance.notifier.webhooks.workers import WebhookDelivery

from ..conftest import NOW


async def subscribe(api: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    answer = await api.post("/v1/webhook-endpoints", json={"url": url, "events": events})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def full_payment(invoice_id: uuid.UUID) -> PaymentReported:
    return PaymentReported(
        invoice_id=invoice_id,
        payment_id=uuid.uuid4(),
        amount=Decimal("1200.00"),
        currency="EUR",
        paid_on=NOW.date(),
        total=Decimal("1200.00"),
        paid=Decimal("1200.00"),
        balance=Decimal("0.00"),
    )


async def test_a_partner_receives_signed_messages_it_subscribed_to(notifier, api, partner):
    # the partner's library checks timestamps against the real time
    notifier.clock.set(datetime.now(UTC))
    endpoint = await subscribe(api, partner.url("ok"), ["invoice.paid", "invoice.sent"])
    assert endpoint["secret"].startswith("whsec_")
    invoice = await notifier.invoice()
    await notifier.apply(full_payment(invoice))
    delivery = WebhookDelivery(notifier.database, notifier.clock, timeout_seconds=2)
    async with httpx.AsyncClient(timeout=2) as client:
        await delivery.deliver_all_due(client)

    assert [b["type"] for b in partner.bodies("ok")] == ["invoice.sent", "invoice.paid"]
    for _, headers, body in partner.received:
        # the partner's side: the official library verifies what we sent
        verified = Webhook(endpoint["secret"]).verify(body, headers)
        assert verified["data"]["invoice_id"] == str(invoice)
        assert headers["webhook-id"].startswith("msg_")
    log = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"]
    assert {(d["type"], d["state"], d["last_status"]) for d in log} == {
        ("invoice.sent", "delivered", 204),
        ("invoice.paid", "delivered", 204),
    }


async def test_every_message_about_an_invoice_names_it_as_the_partner_knows_it(
    notifier, api, partner
):
    """Whatever the message type, its data carries the invoice's number and external_id."""
    await subscribe(api, partner.url("ok"), list(WEBHOOK_TYPES))
    named = {
        await notifier.invoice(number="FA-2026-0101", external_id="erp-101"): (
            "FA-2026-0101",
            "erp-101",
        ),
        await notifier.invoice(number="FA-2026-0102", external_id=None, email=None): (
            "FA-2026-0102",
            None,
        ),
    }
    paid_in_the_end, no_email = named
    await notifier.apply(notifier.due(paid_in_the_end))  # emailed: reminder.sent
    await notifier.apply(notifier.due(no_email))  # no address: reminder.failed
    await notifier.send_all()
    match = {
        "match_id": uuid.uuid4(),
        "bank_reference": "VIR FA-2026-0101",
        "amount": Decimal("200.00"),
        "currency": "EUR",
        "booked_on": NOW.date(),
    }
    for data in (
        InvoiceStatusChanged(
            invoice_id=no_email, status="to_collect", previous_status="not_due", changed_at=NOW
        ),
        PaymentScheduled(invoice_id=no_email, planned_on=NOW.date()),
        InvoiceHandedToCollection(invoice_id=no_email, handed_at=NOW),
        RemindersSuspended(invoice_id=no_email, suspended_at=NOW),
        PaymentSuggested(invoice_id=paid_in_the_end, confidence=0.7, **match),
        PaymentMatched(invoice_id=paid_in_the_end, **match),
        full_payment(paid_in_the_end),
    ):
        await notifier.apply(data)
    async with httpx.AsyncClient(timeout=2) as client:
        await WebhookDelivery(notifier.database, notifier.clock).deliver_all_due(client)

    bodies = partner.bodies("ok")
    assert {b["type"] for b in bodies} == set(WEBHOOK_TYPES)
    for body in bodies:
        data = body["data"]
        assert (data["number"], data["external_id"]) == named[uuid.UUID(data["invoice_id"])], body
    (calendar,) = [b for b in bodies if b["data"].get("previous_status") == "not_due"]
    assert calendar["type"] == "invoice.status_changed"
    assert calendar["data"]["status"] == "to_collect"


async def test_a_failing_partner_is_retried_with_backoff_then_kept_for_replay(
    notifier, api, partner
):
    endpoint = await subscribe(api, partner.url("broken"), ["invoice.sent"])
    await notifier.invoice()
    delivery = WebhookDelivery(notifier.database, notifier.clock, timeout_seconds=2)
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(12):
            await delivery.deliver_all_due(client)
            notifier.clock.advance(timedelta(hours=11))
    assert len(partner.received) == 8  # the first try and seven retries, over 27 hours
    [logged] = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"]
    assert (logged["state"], logged["last_status"], logged["attempts"]) == ("failed", 500, 8)

    replayed = await api.post(f"/v1/webhook-deliveries/{logged['id']}/replay")
    assert replayed.status_code == 202
    async with httpx.AsyncClient(timeout=2) as client:
        await delivery.deliver_all_due(client)
    assert len(partner.received) == 9
    again = await api.post(f"/v1/webhook-deliveries/{logged['id']}/replay")
    assert again.status_code == 409  # still being retried
    assert (await api.post("/v1/webhook-deliveries/msg_nope/replay")).status_code == 404


async def test_a_dead_partner_does_not_slow_the_others(notifier, api, partner):
    await subscribe(api, partner.url("dead"), ["invoice.sent"])
    for _ in range(3):
        await subscribe(api, partner.url("ok"), ["invoice.sent"])
    await notifier.invoice()
    delivery = WebhookDelivery(notifier.database, notifier.clock, timeout_seconds=20)
    async with httpx.AsyncClient(timeout=20) as client:
        await delivery.start_due(client)
        for _ in range(100):
            if len(partner.bodies("ok")) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(partner.bodies("ok")) == 3  # well before the dead one's 20 s timeout
        for task in list(delivery._in_flight):
            task.cancel()


async def test_endpoints_are_validated_listed_deleted_and_private_to_their_organization(
    notifier, api, partner
):
    for body in (
        {"url": "ftp://x.example/", "events": ["invoice.sent"]},
        {"url": "https://u:p@x.example/", "events": ["invoice.sent"]},
        {"url": "https://x.example/", "events": []},
        {"url": "https://x.example/", "events": ["invoice.deleted"]},
    ):
        answer = await api.post("/v1/webhook-endpoints", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]
    endpoint = await subscribe(api, partner.url("ok"), ["invoice.sent", "invoice.sent"])
    assert endpoint["events"] == ["invoice.sent"]
    listed = (await api.get("/v1/webhook-endpoints")).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    other = {"Authorization": "Bearer rk_someone-else"}
    assert (await api.get("/v1/webhook-endpoints", headers=other)).status_code == 401
    assert (await api.get(f"/v1/webhook-endpoints/{uuid.uuid4()}")).status_code == 404
    assert (await api.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 204
    assert (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
    await notifier.invoice()
    async with httpx.AsyncClient(timeout=2) as client:
        await WebhookDelivery(notifier.database, notifier.clock).deliver_all_due(client)
    assert partner.received == []


async def test_refusals_answer_as_problems_naming_what_was_refused(notifier, api, partner):
    """Every refusal of the webhook routes is an application/problem+json document, as in
    the other services: a refused URL names the field, like FastAPI's own 422s."""
    refused = await api.post(
        "/v1/webhook-endpoints", json={"url": "ftp://x.example/", "events": ["invoice.sent"]}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "url"]
    assert "http" in problem["msg"]

    unknown = await api.get(f"/v1/webhook-endpoints/{uuid.uuid4()}/deliveries")
    assert (unknown.status_code, unknown.headers["content-type"]) == (
        404,
        "application/problem+json",
    )
    assert unknown.json()["detail"] == "webhook endpoint not found"

    endpoint = await subscribe(api, partner.url("ok"), ["invoice.sent"])
    await notifier.invoice()
    [pending] = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()[
        "items"
    ]
    busy = await api.post(f"/v1/webhook-deliveries/{pending['id']}/replay")
    assert (busy.status_code, busy.headers["content-type"]) == (409, "application/problem+json")
    assert busy.json()["detail"] == "the delivery is still being attempted"
    gone = await api.post("/v1/webhook-deliveries/msg_nope/replay")
    assert gone.json()["detail"] == "webhook delivery not found"


async def test_a_flooded_silent_endpoint_holds_only_its_share_of_the_slots(notifier, api, partner):
    await subscribe(api, partner.url("dead"), ["invoice.sent"])
    for _ in range(6):  # the silent endpoint's messages come first, and are due first
        await notifier.invoice()
    notifier.clock.advance(timedelta(seconds=1))
    await subscribe(api, partner.url("ok"), ["invoice.sent"])
    for _ in range(6):
        await notifier.invoice()
    delivery = WebhookDelivery(
        notifier.database, notifier.clock, concurrency=4, per_endpoint=2, timeout_seconds=20
    )
    async with httpx.AsyncClient(timeout=20) as client:
        try:
            for _ in range(200):
                await delivery.start_due(client)
                if len(partner.bodies("ok")) == 6:
                    break
                await asyncio.sleep(0.05)
            # all six went out while the silent endpoint's first two requests still hang
            assert len(partner.bodies("ok")) == 6
            assert len(partner.bodies("dead")) == 2
            for _ in range(200):  # until the six outcomes are written
                await delivery.start_due(client)
                counts = await webhook_counts(notifier)
                if counts.get((partner.url("ok"), "delivered", 1)) == 6:
                    break
                await asyncio.sleep(0.05)
            # the silent endpoint (sent all twelve): two requests in flight, ten left
            # unclaimed, still pending
            assert counts == {
                (partner.url("ok"), "delivered", 1): 6,
                (partner.url("dead"), "pending", 1): 2,
                (partner.url("dead"), "pending", 0): 10,
            }
        finally:
            for task in list(delivery._in_flight):
                task.cancel()


async def webhook_counts(notifier: Any) -> dict[tuple[str, str, int], int]:
    async with notifier.database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT e.url, d.state, d.attempts, count(*) FROM webhook_deliveries d "
                "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
                "GROUP BY e.url, d.state, d.attempts"
            )
        )
        return {(url, state, attempts): n for url, state, attempts, n in rows}
