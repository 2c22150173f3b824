"""A status change the calendar alone makes reaches a partner's endpoint once, naming the
invoice as the partner knows it. The invoice-api and the notifier run in-process on one
real broker and PostgreSQL with one frozen clock (moving time across both services is what
this needs, which `make dev`'s processes cannot do); the partner is a real HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from relance.common.clock import FrozenClock
from relance.common.service import create_app
from relance.invoice_api.app import SPEC as INVOICE_API
from relance.invoice_api.settings import InvoiceApiSettings
from relance.notifier.app import SPEC as NOTIFIER
from relance.notifier.settings import NotifierSettings

ADMIN = "test-admin-token"


@asynccontextmanager
async def serving(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"
        ) as client,
    ):
        yield client


async def eventually(read: Callable[[], Awaitable[Any]], within: float = 30.0) -> Any:
    """``read()`` once it gives something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await read()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_a_partner_hears_once_that_an_invoice_became_to_collect_at_midnight(
    make_database, broker, partner
):
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    common = {"kafka_bootstrap_servers": broker.bootstrap_servers, "outbox_poll_seconds": 0.2}
    invoice_api = create_app(
        INVOICE_API,
        InvoiceApiSettings(
            database_url=await make_database("relance.invoice_api"),
            admin_token=ADMIN,
            run_consumers=False,
            calendar_poll_seconds=0.2,
            **common,
        ),
        clock,
    )
    notifier = create_app(
        NOTIFIER,
        NotifierSettings(
            database_url=await make_database("relance.notifier"), run_sending=False, **common
        ),
        clock,
    )
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(serving(invoice_api, "invoice-api"))
        hooks = await stack.enter_async_context(serving(notifier, "notifier"))
        org = await api.post(
            "/v1/organizations",
            json={"name": "Atelier Dupont", "timezone": "Asia/Tokyo"},
            headers={"X-Admin-Token": ADMIN},
        )
        auth = {"Authorization": f"Bearer {org.json()['api_key']}"}

        async def subscribed() -> httpx.Response | None:
            # the notifier knows the key once it has read organization.saved
            answer = await hooks.post(
                "/v1/webhook-endpoints",
                json={"url": partner.url("ok"), "events": ["invoice.status_changed"]},
                headers=auth,
            )
            return answer if answer.status_code == 201 else None

        endpoint = await subscribed() or await eventually(subscribed)
        assert endpoint is not None
        customer = await api.post("/v1/customers", json={"name": "Martin"}, headers=auth)
        invoice = await api.post(
            "/v1/invoices",
            json={
                "customer_id": customer.json()["id"],
                "number": "FA-2026-0042",
                "external_id": "erp-42",
                "issue_date": "2026-03-02",
                "due_date": "2026-03-31",
                "currency": "EUR",
                "total": "1200.00",
                "sent_at": "2026-03-02T09:00:00+00:00",
            },
            headers=auth,
        )
        assert invoice.status_code == 201, invoice.text

        # midnight in Tokyo on 1 April is 15:00 UTC on 31 March
        clock.set(datetime(2026, 3, 31, 15, 0, tzinfo=UTC))

        async def received() -> list[dict[str, Any]]:
            return partner.bodies("ok")

        [body] = await eventually(received)
        deliveries = await hooks.get(
            f"/v1/webhook-endpoints/{endpoint.json()['id']}/deliveries", headers=auth
        )
    assert [d["type"] for d in deliveries.json()["items"]] == ["invoice.status_changed"]
    assert body["type"] == "invoice.status_changed"
    data = body["data"]
    assert data["invoice_id"] == invoice.json()["id"]
    assert (data["previous_status"], data["status"]) == ("not_due", "to_collect")
    assert (data["number"], data["external_id"]) == ("FA-2026-0042", "erp-42")
    assert datetime.fromisoformat(data["changed_at"]) == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
