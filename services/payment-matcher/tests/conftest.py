"""The payment-matcher on a fresh real database, served in-process over HTTP, with invoice
events applied as its consumer applies them, a clock the test sets, and a reader of the
events it wrote to its outbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from relance.common.clock import FrozenClock
from relance.common.db import Database
from relance.common.events import Event, Payload, payment_events
from relance.common.events.invoice_events import InvoiceSent, InvoiceUpdated, PaymentReported
from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot, OrganizationSnapshot
from relance.common.inbox import claim_event
from relance.common.service import create_app
from relance.common.tenancy import api_key_sha256
from relance.devstack.testing import metric_value, read_events
from relance.payment_matcher.app import SPEC
from relance.payment_matcher.handlers import HANDLERS
from relance.payment_matcher.settings import PaymentMatcherSettings

NOW = datetime(2026, 4, 15, 8, 0, tzinfo=UTC)
IBAN_MARTIN = "FR7630006000011234567890189"
IBAN_OTHER = "DE89370400440532013000"


def credit(
    bank_reference: str = "BNK-1",
    amount: str = "1200.00",
    *,
    remittance_info: str | None = None,
    counterparty_name: str | None = "BOULANGERIE MARTIN",
    counterparty_iban: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    item = {
        "bank_reference": bank_reference,
        "booked_on": "2026-04-14",
        "amount": amount,
        "currency": "EUR",
        "counterparty_name": counterparty_name,
        "counterparty_iban": counterparty_iban,
        "remittance_info": remittance_info,
        **fields,
    }
    return {k: v for k, v in item.items() if v is not None}


class Matcher:
    """The service with one organization; ``org`` and ``key`` may be switched to another."""

    credit = staticmethod(credit)  # an item of POST /v1/bank-transactions
    IBAN_MARTIN = IBAN_MARTIN

    def __init__(self, database: Database, clock: FrozenClock, bootstrap_servers: str) -> None:
        self.database = database
        self.clock = clock
        self.bootstrap_servers = bootstrap_servers
        self.client: httpx.AsyncClient | None = None
        self.org = uuid.uuid4()
        self.key = "rk_matcher-test-" + self.org.hex

    async def apply(self, payload: Payload, org: uuid.UUID | None = None) -> None:
        event = Event.new(
            payload, source="test", organization_id=org or self.org, time=self.clock.now()
        )
        async with self.database.transaction() as session:
            if await claim_event(session, event.id, event.type):
                await HANDLERS[event.type](session, event)

    async def new_organization(self, org: uuid.UUID | None = None) -> None:
        self.org = org or uuid.uuid4()
        self.key = "rk_matcher-test-" + self.org.hex
        await self.apply(
            OrganizationSaved(
                organization_id=self.org,
                organization=OrganizationSnapshot(id=self.org, name="Atelier Dupont"),
                api_key_sha256=api_key_sha256(self.key),
            )
        )

    async def invoice(
        self,
        number: str = "FA-2026-0012",
        total: str = "1200.00",
        *,
        customer_id: uuid.UUID | None = None,
        customer: str = "Boulangerie Martin",
        ibans: tuple[str, ...] = (IBAN_MARTIN,),
        payment_reference: str | None = None,
        currency: str = "EUR",
        sent_days_ago: int = 30,
        invoice_id: uuid.UUID | None = None,
        announced_as: type[InvoiceSent] | type[InvoiceUpdated] = InvoiceSent,
        balance: str | None = None,
    ) -> uuid.UUID:
        """An invoice sent (``invoice.sent``, or ``announced_as`` another event of the same
        shape), as invoice-api announces it; unpaid unless ``balance`` says otherwise."""
        invoice_id = invoice_id or uuid.uuid4()
        sent_at = self.clock.now() - timedelta(days=sent_days_ago)
        await self.apply(
            announced_as(
                invoice_id=invoice_id,
                organization=OrganizationSnapshot(id=self.org, name="Atelier Dupont"),
                customer=CustomerSnapshot(
                    id=customer_id or uuid.uuid4(), name=customer, ibans=ibans
                ),
                invoice=InvoiceSnapshot(
                    number=number,
                    currency=currency,
                    total=Decimal(total),
                    paid=Decimal(total) - Decimal(balance or total),
                    balance=Decimal(balance or total),
                    issue_date=sent_at.date(),
                    due_date=sent_at.date() + timedelta(days=30),
                    sent_at=sent_at,
                    payment_reference=payment_reference,
                ),
            )
        )
        return invoice_id

    async def paid_elsewhere(
        self,
        invoice_id: uuid.UUID,
        amount: str,
        balance: str,
        *,
        total: str | None = None,
        match_id: uuid.UUID | str | None = None,
        bank_reference: str | None = None,
    ) -> None:
        """invoice-api's ``payment.reported``: a payment a person or a partner reported, or
        the one it recorded for this service's match (``match_id``, or only the transaction's
        ``bank_reference`` as an invoice-api that does not name the match says it)."""
        invoice_total = Decimal(total) if total is not None else Decimal(amount) + Decimal(balance)
        await self.apply(
            PaymentReported(
                invoice_id=invoice_id,
                payment_id=uuid.uuid4(),
                amount=Decimal(amount),
                currency="EUR",
                paid_on=date(2026, 4, 14),
                source="bank" if match_id or bank_reference else "user",
                reference=bank_reference,
                total=invoice_total,
                paid=invoice_total - Decimal(balance),
                balance=Decimal(balance),
                match_id=uuid.UUID(str(match_id)) if match_id else None,
            )
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        assert self.client is not None
        return await self.client.post(path, json=body, headers=self.headers())

    async def get(self, path: str, **params: Any) -> httpx.Response:
        assert self.client is not None
        return await self.client.get(path, params=params or None, headers=self.headers())

    async def upload(
        self, content: bytes, filename: str = "statement.xml", **form: str
    ) -> httpx.Response:
        assert self.client is not None
        return await self.client.post(
            "/v1/bank-statements",
            files={"file": (filename, content, "application/octet-stream")},
            data=form or None,
            headers=self.headers(),
        )

    async def transactions(self, *items: dict[str, Any]) -> dict[str, Any]:
        answer = await self.post("/v1/bank-transactions", {"items": list(items)})
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    async def transaction(self, bank_reference: str) -> dict[str, Any]:
        answer = await self.get(f"/v1/bank-transactions/{bank_reference}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        """The organization's events of this type on the broker, in order, once the relay
        has published everything the service wrote to its outbox."""
        for _ in range(200):
            if await self.count("outbox") == 0:
                break
            await asyncio.sleep(0.05)
        found = await read_events(self.bootstrap_servers, payment_events.TOPIC, idle_ms=300)
        return [
            {**e.data.model_dump(mode="json"), "type": e.type}
            for e in found
            if e.organization_id == self.org and e.type == event_type
        ]

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the service's ``/metrics`` page, as Prometheus scrapes it."""
        assert self.client is not None
        return metric_value((await self.client.get("/metrics")).text, name, **labels)

    async def balance(self, invoice_id: uuid.UUID) -> Decimal:
        async with self.database.transaction() as session:
            found: Decimal = await session.scalar(
                text("SELECT balance FROM open_invoices WHERE invoice_id = :id"), {"id": invoice_id}
            )
            return found

    async def count(self, table: str) -> int:
        async with self.database.transaction() as session:
            value: int = await session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            return value


@asynccontextmanager
async def serving(url: str, bootstrap_servers: str) -> AsyncIterator[Matcher]:
    """The service on the database at ``url``, with one new organization."""
    database = Database(url, pool_size=5)
    running = Matcher(database, FrozenClock(NOW), bootstrap_servers)
    await running.new_organization()
    settings = PaymentMatcherSettings(
        database_url=url,
        kafka_bootstrap_servers=bootstrap_servers,
        run_consumers=False,
        outbox_poll_seconds=0.1,
    )
    app = create_app(SPEC, settings, running.clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://payment-matcher"
        ) as client,
    ):
        running.client = client
        yield running
    await database.dispose()


@pytest.fixture
def serve(broker) -> Any:
    """``async with serve(url) as matcher``: the service on a database the test made."""
    return lambda url: serving(url, broker.bootstrap_servers)


@pytest_asyncio.fixture
async def matcher(make_database, broker) -> AsyncIterator[Matcher]:
    """The service, its consumers off (tests apply events themselves), its relay on."""
    async with serving(
        await make_database("relance.payment_matcher"), broker.bootstrap_servers
    ) as running:
        yield running
