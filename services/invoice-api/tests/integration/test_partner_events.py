"""A partner tells Relance of payments it recorded: signed requests (Standard Webhooks) to
POST /v1/partner-events, each webhook-id applied once, anything else refused with a 4xx and
nothing written."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from relance.common.db import asyncpg_dsn
from relance.common.events import Event, invoice_events
from relance.common.signing import new_webhook_secret, signed_headers
from relance.devstack.testing import read_events


class Partner:
    """The partner's side: it holds the organization's API key and partner secret."""

    def __init__(self, api: Any, secret: str) -> None:
        self.api = api
        self.secret = secret

    async def send(
        self,
        data: dict[str, Any],
        *,
        webhook_id: str = "msg_1",
        type_: str = "payment.recorded",
        secret: str | None = None,
        late: timedelta = timedelta(0),
        body: bytes | None = None,
    ) -> httpx.Response:
        payload = body or json.dumps({"type": type_, "data": data}).encode()
        headers = signed_headers(
            secret or self.secret, webhook_id, self.api.clock.now() - late, payload.decode("utf-8")
        )
        return await self.api.client.post(
            "/v1/partner-events", content=payload, headers={**self.api.headers(), **headers}
        )


async def partner_of(api: Any) -> Partner:
    answer = await api.post("/v1/partner-secret")
    assert answer.status_code == 201, answer.text
    return Partner(api, answer.json()["secret"])


def paid(amount: str, **names: str) -> dict[str, Any]:
    return {"amount": amount, "paid_on": "2026-03-01", "reference": "VIR 8812", **names}


async def count(api: Any, sql: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(api.app.state.runtime.database.url))
    try:
        value: int = await connection.fetchval(sql)
        return value
    finally:
        await connection.close()


async def events_of(broker: Any, invoice_id: str, event_type: str) -> list[Event[Any]]:
    """The invoice's events of a type on the broker, once there is one (the relay may lag)."""
    for _ in range(100):
        found = [
            e
            for e in await read_events(broker.bootstrap_servers, invoice_events.TOPIC)
            if e.subject == invoice_id and e.type == event_type
        ]
        if found:
            return found
        await asyncio.sleep(0.2)
    return []


async def payments_recorded(api: Any) -> int:
    return await count(api, "SELECT count(*) FROM payments")


async def test_a_payment_recorded_by_the_partner_becomes_a_payment_here(api, broker):
    await api.as_new_organization()
    invoice = await api.sent_invoice(external_id="qb-1042")
    partner = await partner_of(api)

    answer = await partner.send(paid("200.00", invoice_number=invoice["number"]))

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "recorded"
    assert answer.json()["invoice_id"] == invoice["id"]
    shown = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert (shown["paid"], shown["balance"], shown["status"]) == (
        "200.00",
        "1000.00",
        "partially_paid",
    )
    activity = (await api.get(f"/v1/invoices/{invoice['id']}/activity")).json()["items"]
    reported = [a for a in activity if a["kind"] == "payment.reported"]
    assert [a["detail"]["source"] for a in reported] == ["partner"]
    # the payment goes out as an event, to the scheduler and to partners
    (event,) = await events_of(broker, invoice["id"], "payment.reported")
    assert event.data.source == "partner"
    assert str(event.data.amount) == "200.00"
    assert event.data.reference == "VIR 8812"


async def test_the_partner_may_name_the_invoice_by_its_own_id(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice(external_id="qb-1042")
    partner = await partner_of(api)

    answer = await partner.send(paid("1200.00", external_id="qb-1042"))

    assert answer.status_code == 200, answer.text
    assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["status"] == "paid"


async def test_a_replayed_webhook_id_is_applied_once_whatever_its_body(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)
    first = await partner.send(paid("100.00", invoice_number=invoice["number"]))

    again = await partner.send(paid("100.00", invoice_number=invoice["number"]))
    changed = await partner.send(paid("300.00", invoice_number=invoice["number"]))

    assert [a.status_code for a in (first, again, changed)] == [200, 200, 200]
    assert [a.json()["status"] for a in (again, changed)] == ["already_applied"] * 2
    assert again.json()["payment_id"] == first.json()["payment_id"]
    assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["paid"] == "100.00"
    assert await payments_recorded(api) == 1


async def test_the_same_delivery_arriving_five_times_at_once_pays_once(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)

    answers = await asyncio.gather(
        *(partner.send(paid("100.00", invoice_number=invoice["number"])) for _ in range(5))
    )

    assert sorted(a.json()["status"] for a in answers) == ["already_applied"] * 4 + ["recorded"]
    assert len({a.json()["payment_id"] for a in answers}) == 1
    assert await payments_recorded(api) == 1


async def test_two_different_webhook_ids_are_two_payments(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)

    await partner.send(paid("100.00", invoice_number=invoice["number"]), webhook_id="msg_a")
    await partner.send(paid("100.00", invoice_number=invoice["number"]), webhook_id="msg_b")

    assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["paid"] == "200.00"


async def test_without_a_partner_secret_a_request_is_refused_and_says_how_to_get_one(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    stranger = Partner(api, new_webhook_secret())

    answer = await stranger.send(paid("100.00", invoice_number=invoice["number"]))

    assert answer.status_code == 401
    assert "POST /v1/partner-secret" in answer.json()["detail"]
    assert await payments_recorded(api) == 0


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ({"secret": new_webhook_secret()}, "no webhook-signature matches"),
        ({"late": timedelta(minutes=6)}, "5 minutes"),
        ({"late": -timedelta(minutes=6)}, "5 minutes"),
    ],
)
async def test_a_bad_or_stale_signature_is_a_401_and_records_nothing(api, tamper, says):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)

    answer = await partner.send(paid("100.00", invoice_number=invoice["number"]), **tamper)

    assert answer.status_code == 401
    assert says in answer.json()["detail"]
    assert await payments_recorded(api) == 0


async def test_a_body_changed_in_transit_is_a_401(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)
    body = json.dumps({"type": "payment.recorded", "data": paid("1.00", invoice_number="X")})
    headers = signed_headers(partner.secret, "msg_1", api.clock.now(), body)
    changed = body.replace('"X"', json.dumps(invoice["number"]))

    answer = await api.client.post(
        "/v1/partner-events", content=changed, headers={**api.headers(), **headers}
    )

    assert answer.status_code == 401
    assert await payments_recorded(api) == 0


async def test_missing_signature_headers_are_named(api):
    await api.as_new_organization()
    await partner_of(api)

    answer = await api.client.post(
        "/v1/partner-events", json={"type": "payment.recorded"}, headers=api.headers()
    )

    assert answer.status_code == 401
    assert "webhook-signature" in answer.json()["detail"]


async def test_a_new_secret_replaces_the_old_one_at_once(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    old = await partner_of(api)
    new = await partner_of(api)
    assert new.secret != old.secret
    assert new.secret.startswith("whsec_")

    refused = await old.send(paid("100.00", invoice_number=invoice["number"]))
    accepted = await new.send(paid("100.00", invoice_number=invoice["number"]))

    assert (refused.status_code, accepted.status_code) == (401, 200)


async def test_the_api_key_is_still_required(api):
    await api.as_new_organization()
    partner = await partner_of(api)
    api.key = None

    answer = await partner.send(paid("100.00", invoice_number="FA-1"))

    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (paid("100.00", invoice_number="FA-404"), "data.invoice_number"),
        (paid("100.00", external_id="qb-404"), "data.external_id"),
        (paid("100.00"), "data"),
        ({"amount": "-3", "paid_on": "2026-03-01", "invoice_number": "FA-1"}, "amount"),
        ({"amount": "3.00", "paid_on": "yesterday", "invoice_number": "FA-1"}, "paid_on"),
        ({**paid("3.00", invoice_number="FA-1"), "bonus": 1}, "bonus"),
    ],
)
async def test_a_payment_that_names_no_invoice_or_is_malformed_is_a_422(api, data, where):
    await api.as_new_organization()
    await api.sent_invoice(number="FA-1", external_id="qb-1")
    partner = await partner_of(api)

    answer = await partner.send(data)

    assert answer.status_code == 422, answer.text
    assert where in json.dumps(answer.json()["detail"])
    assert await payments_recorded(api) == 0


async def test_a_refused_delivery_can_be_corrected_and_sent_again_with_the_same_id(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    partner = await partner_of(api)

    wrong = await partner.send(paid("100.00", invoice_number="FA-404"))
    right = await partner.send(paid("100.00", invoice_number=invoice["number"]))

    assert (wrong.status_code, right.status_code) == (422, 200)
    assert right.json()["status"] == "recorded"


async def test_two_names_of_two_different_invoices_are_a_422(api):
    await api.as_new_organization()
    one = await api.sent_invoice(external_id="qb-1")
    await api.sent_invoice(external_id="qb-2")
    partner = await partner_of(api)

    answer = await partner.send(paid("10.00", invoice_number=one["number"], external_id="qb-2"))

    assert answer.status_code == 422
    assert "two different invoices" in answer.text


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"type": "invoice.deleted", "data": {}}', b'"payment.recorded"'],
)
async def test_a_body_that_is_not_a_payment_recorded_event_is_a_422(api, body):
    await api.as_new_organization()
    partner = await partner_of(api)

    answer = await partner.send({}, body=body)

    assert answer.status_code == 422, answer.text


async def test_a_body_over_64_kib_is_a_413(api):
    await api.as_new_organization()
    partner = await partner_of(api)
    huge = json.dumps({"type": "payment.recorded", "data": {"pad": "x" * 70_000}}).encode()

    answer = await partner.send({}, body=huge)

    assert answer.status_code == 413


async def test_another_organizations_invoice_cannot_be_paid_by_this_partner(api):
    await api.as_new_organization()
    await api.sent_invoice(number="FA-77")
    await api.as_new_organization(name="Autre SARL")
    partner = await partner_of(api)

    answer = await partner.send(paid("100.00", invoice_number="FA-77"))

    assert answer.status_code == 422
    assert "no invoice numbered 'FA-77'" in answer.text
    assert await payments_recorded(api) == 0


@pytest.mark.parametrize(
    ("amount", "draft", "code"),
    [("1200.01", False, 422), ("10.00", True, 409)],
)
async def test_more_than_the_balance_or_a_draft_is_refused_and_the_id_stays_free(
    api, amount, draft, code
):
    await api.as_new_organization()
    invoice = await (api.invoice() if draft else api.sent_invoice())
    partner = await partner_of(api)

    answer = await partner.send(paid(amount, invoice_number=invoice["number"]))

    assert answer.status_code == code, answer.text
    assert await payments_recorded(api) == 0
    assert await count(api, "SELECT count(*) FROM partner_events") == 0
