"""The scheduler's HTTP API: the plan preview and an invoice's plan, per tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest_asyncio

from relance.common.events.invoice_events import PaymentScheduled
from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.payment_events import SuggestionRejected
from relance.common.events.types import OrganizationSnapshot
from relance.common.service import create_app
from relance.common.tenancy import api_key_sha256
from relance.devstack.testing import read_events
from relance.scheduler.app import SPEC
from relance.scheduler.settings import SchedulerSettings

from ..conftest import ORG, at
from .test_firing import suggestion
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


async def test_a_missing_plan_is_answered_as_a_problem_like_every_refusal(client, scheduler):
    theirs = await scheduler.send(sent_at=SENT, due=DUE, organization_id=uuid.uuid4())

    for invoice_id in (theirs, uuid.uuid4()):
        answer = await client.get(f"/v1/invoices/{invoice_id}/plan")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == "plan for this invoice not found"


def shown(step: dict[str, Any]) -> tuple[str, bool, str | None, str | None]:
    return step["kind"], step["held"], step["hold_reason"], step["goes_at"]


async def plan_and_last_published(
    client: httpx.AsyncClient, broker: Any, invoice: uuid.UUID, published: int
) -> list[tuple[str, bool, str | None, str | None]]:
    """The steps the plan route shows, once the invoice's ``published``-th reminder.planned
    is on the broker; that last plan published carries the same."""
    answer = await client.get(f"/v1/invoices/{invoice}/plan")
    assert answer.status_code == 200
    route = [shown(step) for step in answer.json()["items"]]
    plans: list[Any] = []
    for _ in range(50):
        events = await read_events(broker.bootstrap_servers, "reminder-events", idle_ms=300)
        plans = [e for e in events if e.type == "reminder.planned" and e.subject == str(invoice)]
        if len(plans) >= published:
            break
        await asyncio.sleep(0.2)
    assert len(plans) == published
    last = plans[-1].data.model_dump(mode="json")
    assert [shown(step) for step in last["steps"]] == route
    return route


async def test_a_payment_announced_for_a_date_shows_the_steps_held_and_when_one_goes(
    client, scheduler, broker
):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)  # issuance
    # announced for Friday 27 March: held through Tuesday 31, released Wednesday 1 April
    await scheduler.apply(PaymentScheduled(invoice_id=invoice, planned_on=date(2026, 3, 27)))
    steps = await plan_and_last_published(client, broker, invoice, 2)
    assert steps[1:4] == [
        ("pre_due", True, "payment_scheduled", None),  # catch-up will skip it
        ("due", True, "payment_scheduled", "2026-04-01T07:00:00Z"),
        ("escalation_1", False, None, "2026-04-08T07:00:00Z"),
    ]
    # a later announcement moves the hold, and the date shown with it
    await scheduler.apply(PaymentScheduled(invoice_id=invoice, planned_on=date(2026, 4, 3)))
    steps = await plan_and_last_published(client, broker, invoice, 3)
    assert steps[1:4] == [
        ("pre_due", True, "payment_scheduled", None),
        ("due", True, "payment_scheduled", None),
        ("escalation_1", True, "payment_scheduled", "2026-04-09T07:00:00Z"),
    ]


async def test_a_detected_payment_holds_every_step_until_a_person_rejects_it(
    client, scheduler, broker
):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    match = uuid.uuid4()
    await scheduler.apply(suggestion(invoice, match))
    steps = await plan_and_last_published(client, broker, invoice, 2)
    assert steps[1:] == [
        (kind, True, "payment_detected", None)
        for kind in ("pre_due", "due", "escalation_1", "escalation_2", "escalation_3")
    ]
    # rejected on 8 April at 10:00: pre_due, due and escalation_1 (9:00) are past; only
    # escalation_1 goes, at once
    scheduler.clock.set(at("2026-04-08 10:00"))
    await scheduler.apply(SuggestionRejected(invoice_id=invoice, match_id=match))
    steps = await plan_and_last_published(client, broker, invoice, 3)
    assert steps[1:5] == [
        ("pre_due", False, None, None),
        ("due", False, None, None),
        ("escalation_1", False, None, "2026-04-08T08:00:00Z"),
        ("escalation_2", False, None, "2026-04-15T07:00:00Z"),
    ]
    fired = await scheduler.fire_at(at("2026-04-08 10:00"))
    assert [f["kind"] for f in fired] == ["escalation_1"]
