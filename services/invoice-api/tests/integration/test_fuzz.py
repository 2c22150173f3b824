"""A schema-driven fuzzer over every endpoint of the OpenAPI document: whatever it sends,
invoice-api never answers 5xx. Half the cases aim at records that exist, so that the
checks behind the 404 are reached too."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from relance.common.migrations import upgrade
from relance.common.service import create_app
from relance.devstack.broker import EmbeddedBroker
from relance.devstack.ports import free_port
from relance.invoice_api.app import SPEC
from relance.invoice_api.settings import InvoiceApiSettings

ADMIN = "fuzz-admin-token"
schema = schemathesis.openapi.from_dict(create_app(SPEC, InvoiceApiSettings()).openapi())


class Target:
    """invoice-api with its own event loop, driven from a synchronous hypothesis test."""

    def __init__(self, postgres: Any, log_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        name = f"fuzz_{uuid.uuid4().hex[:8]}"
        postgres.create_databases([name])
        upgrade("relance.invoice_api", postgres.url(name))
        self.broker = EmbeddedBroker(free_port(), log_dir / "broker.log")
        settings = InvoiceApiSettings(
            database_url=postgres.url(name),
            kafka_bootstrap_servers=self.broker.bootstrap_servers,
            admin_token=ADMIN,
            run_consumers=False,
        )
        self.app = create_app(SPEC, settings)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://invoice-api"
        )
        self.key, self.ids = self.run(self._seed())
        self.flip = itertools.cycle([True, False])

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _seed(self) -> tuple[str, dict[str, str]]:
        org = await self.client.post(
            "/v1/organizations", json={"name": "Fuzz"}, headers={"X-Admin-Token": ADMIN}
        )
        key = org.json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        customer = await self.client.post("/v1/customers", json={"name": "C"}, headers=auth)
        invoice = await self.client.post(
            "/v1/invoices",
            json={
                "customer_id": customer.json()["id"],
                "number": "F-1",
                "issue_date": "2026-01-01",
                "due_date": "2026-01-31",
                "total": "100.00",
                "sent_at": "2026-01-02T10:00:00+00:00",
            },
            headers=auth,
        )
        return key, {"customer_id": customer.json()["id"], "invoice_id": invoice.json()["id"]}

    def call(self, case: Any) -> httpx.Response:
        if case.path_parameters and next(self.flip):
            for name in case.path_parameters:
                if name in self.ids:
                    case.path_parameters[name] = self.ids[name]
        headers = {"Authorization": f"Bearer {self.key}", "X-Admin-Token": ADMIN}
        kwargs = case.as_transport_kwargs(base_url="http://invoice-api", headers=headers)
        kwargs.pop("cookies", None)
        return self.run(self.client.request(**kwargs))

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.lifespan.__aexit__(None, None, None))
        self.loop.close()
        self.broker.stop()


@pytest.fixture(scope="module")
def target(postgres, tmp_path_factory) -> Iterator[Target]:
    fuzzed = Target(postgres, tmp_path_factory.mktemp("fuzz"))
    yield fuzzed
    fuzzed.close()


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case, target):
    response = target.call(case)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
