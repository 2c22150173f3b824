"""invoice-api running in-process on a fresh real database and broker, with a clock the
test moves, and helpers to create organizations, customers and invoices over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from relance.common.clock import FrozenClock
from relance.common.service import create_app
from relance.invoice_api.app import SPEC
from relance.invoice_api.settings import InvoiceApiSettings

ADMIN = "test-admin-token"


@pytest.fixture
def clock() -> FrozenClock:
    # Monday 2 March 2026, 10:00 in Paris
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


class Api:
    """An HTTP client on the service, acting for one organization once ``as_org`` is set."""

    def __init__(self, client: httpx.AsyncClient, clock: FrozenClock, app: Any) -> None:
        self.client = client
        self.clock = clock
        self.app = app
        self.key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params or None, headers=self.headers())

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers())

    async def patch(self, path: str, body: Any) -> httpx.Response:
        return await self.client.patch(path, json=body, headers=self.headers())

    async def new_organization(self, **fields: Any) -> dict[str, Any]:
        answer = await self.client.post(
            "/v1/organizations",
            json={"name": "Atelier Dupont", **fields},
            headers={"X-Admin-Token": ADMIN},
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def as_new_organization(self, **fields: Any) -> dict[str, Any]:
        org = await self.new_organization(**fields)
        self.key = org["api_key"]
        return org

    async def customer(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Boulangerie Martin", "email": "compta@martin.example", **fields}
        answer = await self.post("/v1/customers", body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def invoice(self, customer_id: str | None = None, **fields: Any) -> dict[str, Any]:
        answer = await self.post_invoice(customer_id, **fields)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def post_invoice(self, customer_id: str | None = None, **fields: Any) -> httpx.Response:
        """``POST /v1/invoices`` of an invoice of 1,200 EUR (a new customer unless given)."""
        if customer_id is None:
            customer_id = (await self.customer())["id"]
        body = {
            "customer_id": customer_id,
            "number": f"FA-2026-{uuid.uuid4().int % 100000:05d}",
            "issue_date": "2026-03-02",
            "due_date": "2026-03-31",
            "currency": "EUR",
            "total": "1200.00",
            **fields,
        }
        return await self.post("/v1/invoices", body)

    async def sent_invoice(self, **fields: Any) -> dict[str, Any]:
        invoice = await self.invoice(**fields)
        answer = await self.post(f"/v1/invoices/{invoice['id']}/send")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def consumers() -> bool:
    """Whether the service reads its topics during the test (override to turn on)."""
    return False


@pytest_asyncio.fixture
async def api(make_database, broker, clock, consumers) -> AsyncIterator[Api]:
    settings = InvoiceApiSettings(
        database_url=await make_database("relance.invoice_api"),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        admin_token=ADMIN,
        outbox_poll_seconds=0.2,
        run_consumers=consumers,
        calendar_poll_seconds=0.2,  # the frozen clock jumps: the calendar loop looks often
    )
    app = create_app(SPEC, settings, clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://invoice-api") as client,
    ):
        yield Api(client, clock, app)
