"""The scheduler's HTTP API: the plan preview and an invoice's plan, per tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.types import OrganizationSnapshot
from relance.common.service import create_app
from relance.common.tenancy import api_key_sha256
from relance.scheduler.app import SPEC
from relance.scheduler.settings import SchedulerSettings

from ..conftest import ORG
from .test_planning import DUE, SENT

KEY = "rk_test-key-of-the-organization"


@pytest_asyncio.fixture
async def client(scheduler, broker) -> AsyncIterator[httpx.AsyncClient]:
    await scheduler.apply(organization(ORG, KEY))
    settings = SchedulerSettings(
        database_url=scheduler.database.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        run_consumers=False,
        run_firing=False,
    )
    app = create_app(SPEC, settings, scheduler.clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://scheduler",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as http,
    ):
        yield http


def organization(org_id: uuid.UUID, key: str, **rules: str) -> OrganizationSaved:
    return OrganizationSaved(
        organization_id=org_id,
        organization=OrganizationSnapshot(id=org_id, name="Atelier", **rules),
        api_key_sha256=api_key_sha256(key),
    )


async def test_the_preview_gives_the_plan_of_the_organization_rules(client):
    answer = await client.post(
        "/v1/plans/preview", json={"sent_on": "2026-03-02", "due_on": "2026-03-04"}
    )
    assert answer.status_code == 200, answer.text
    # case B (Δ = 2): three escalations 5, 10 and 15 business days after S
    assert answer.json()["items"] == [
        {"kind": "issuance", "severity": 0, "scheduled_for": "2026-03-02T09:00:00+01:00"},
        {"kind": "escalation_1", "severity": 3, "scheduled_for": "2026-03-09T09:00:00+01:00"},
        {"kind": "escalation_2", "severity": 4, "scheduled_for": "2026-03-16T09:00:00+01:00"},
        {"kind": "escalation_3", "severity": 5, "scheduled_for": "2026-03-23T09:00:00+01:00"},
    ]


async def test_the_preview_follows_a_change_of_the_organization_rules(client, scheduler):
    await scheduler.apply(organization(ORG, KEY, reminder_time="16:15", country="DE"))
    answer = await client.post(
        "/v1/plans/preview", json={"sent_on": "2026-03-30", "due_on": "2026-04-01"}
    )
    # S + 5 bd skips Good Friday (3 April, a holiday in Germany, not in France) and
    # Easter Monday: Wednesday 8 April, where France would give Tuesday 7
    assert answer.json()["items"][1]["scheduled_for"] == "2026-04-08T16:15:00+02:00"


async def test_the_preview_refuses_what_it_cannot_plan(client):
    for body in (
        {"sent_on": "2026-02-30", "due_on": "2026-03-04"},
        {"sent_on": "2026-03-02"},
        {"sent_on": "2026-03-02", "due_on": "2046-03-02"},
        {"sent_on": "9999-12-31", "due_on": "9999-12-31"},
        {"sent_on": "2026-03-02", "due_on": "2026-03-04", "extra": 1},
    ):
        answer = await client.post("/v1/plans/preview", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]


async def test_without_a_known_key_the_answer_is_401(client):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer rk_unknown"}):
        answer = await client.post(
            "/v1/plans/preview",
            json={"sent_on": "2026-03-02", "due_on": "2026-03-04"},
            headers=headers,
        )
        assert answer.status_code == 401


async def test_an_invoice_plan_is_shown_to_its_organization_only(client, scheduler):
    mine = await scheduler.send(sent_at=SENT, due=DUE)
    other_org = uuid.uuid4()
    theirs = await scheduler.send(sent_at=SENT, due=DUE, organization_id=other_org)

    answer = await client.get(f"/v1/invoices/{mine}/plan")
    assert answer.status_code == 200
    plan = answer.json()
    assert plan["due_date"] == "2026-03-31"
    assert plan["stopped"] is None
    assert [s["kind"] for s in plan["items"]][:3] == ["issuance", "pre_due", "due"]
    assert {s["status"] for s in plan["items"]} == {"planned"}

    assert (await client.get(f"/v1/invoices/{theirs}/plan")).status_code == 404
    assert (await client.get(f"/v1/invoices/{uuid.uuid4()}/plan")).status_code == 404
    assert (await client.get("/v1/invoices/not-a-uuid/plan")).status_code == 422
