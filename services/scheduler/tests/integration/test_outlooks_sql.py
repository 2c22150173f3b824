"""The times the scheduler shows (``plan.step_outlooks``) are the times its SQL fires at.

Random plans with random holds go into a real database: ``reschedule`` must set the same
``fire_at`` as the Python rule, the plan published must carry the same holds, and the
firing's own claim, run at each of those times, must send exactly the steps the rule says
go, at the time it says.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from relance.common.db import Database
from relance.common.events.types import StepStatus
from relance.common.migrations import upgrade
from relance.scheduler import repository as repo
from relance.scheduler.plan import StepState, step_outlooks
from relance.scheduler.service import plan_views
from relance.scheduler.tables import plans, steps, suggestions

START = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
STATES = [(StepStatus.PLANNED, False), (StepStatus.PLANNED, True)] + [
    (status, status in (StepStatus.SENT, StepStatus.FAILED)) for status in StepStatus
]


class Store:
    """The scheduler's database with its own event loop, for a synchronous hypothesis test."""

    def __init__(self, postgres: Any) -> None:
        self.loop = asyncio.new_event_loop()
        name = f"outlooks_{uuid.uuid4().hex[:8]}"
        postgres.create_databases([name])
        upgrade("relance.scheduler", postgres.url(name))
        self.database = Database(postgres.url(name), pool_size=2)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.database.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def store(postgres: Any) -> Iterator[Store]:
    opened = Store(postgres)
    yield opened
    opened.close()


@st.composite
def plans_with_holds(draw: st.DrawFn) -> dict[str, Any]:
    gaps = draw(st.lists(st.integers(0, 20), min_size=1, max_size=7))
    states, day = [], START
    for gap in gaps:
        day += timedelta(days=gap)
        status, fired = draw(st.sampled_from(STATES))
        states.append(StepState(day, status, day if fired else None))
    return {
        "steps": states,
        "hold_until": draw(st.none() | st.integers(-3, 100).map(lambda d: START + timedelta(d))),
        "now": START + timedelta(hours=draw(st.integers(-48, 24 * 100))),
        # pending / decided suggestions of the plan's organization, pending ones of another
        "pending": draw(st.integers(0, 2)),
        "decided": draw(st.integers(0, 1)),
        "foreign": draw(st.integers(0, 1)),
    }


async def store_plan(session: Any, case: dict[str, Any]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    invoice, org = uuid.uuid4(), uuid.uuid4()
    await session.execute(
        plans.insert().values(
            invoice_id=invoice,
            organization_id=org,
            sent_at=START,
            due_date=date(2026, 3, 31),
            imported=False,
            country="FR",
            timezone="Europe/Paris",
            reminder_time=time(9, 0),
            hold_until=case["hold_until"],
        )
    )
    ids = [uuid.uuid4() for _ in case["steps"]]
    await session.execute(
        steps.insert(),
        [
            {
                "id": step_id,
                "organization_id": org,
                "invoice_id": invoice,
                "position": position,
                "kind": "due",
                "severity": 2,
                "scheduled_for": state.scheduled_for,
                "status": state.status.value,
                "fired_at": state.fired_at,
            }
            for position, (step_id, state) in enumerate(zip(ids, case["steps"], strict=True))
        ],
    )
    owners = [org] * case["pending"] + [uuid.uuid4()] * case["foreign"]
    rows = [{"organization_id": o, "pending": True} for o in owners]
    rows += [{"organization_id": org, "pending": False}] * case["decided"]
    if rows:
        await session.execute(
            suggestions.insert(),
            [{**row, "match_id": uuid.uuid4(), "invoice_id": invoice} for row in rows],
        )
    return invoice, ids


async def check(database: Database, case: dict[str, Any]) -> None:
    now = case["now"]
    expected = step_outlooks(
        case["steps"],
        hold_until=case["hold_until"],
        awaiting_decision=case["pending"] > 0,
        now=now,
    )
    async with database.transaction() as session:
        invoice, ids = await store_plan(session, case)
        await repo.reschedule(session, invoice)
        stored = await repo.steps_of(session, invoice)
        assert [row.fire_at for row in stored] == [o.fire_at for o in expected]
        views = await plan_views(session, await repo.plan_of(session, invoice), now)
        assert [(v.held, v.hold_reason, v.goes_at) for v in views] == [
            (o.held, o.hold_reason, o.goes_at) for o in expected
        ]
    went: dict[uuid.UUID, datetime] = {}
    # the firing loop, on time from now on
    for instant in sorted({max(o.fire_at, now) for o in expected if o.fire_at is not None}):
        async with database.transaction() as session:
            claimed = await repo.claim_due_steps(session, instant, 1000)
        went |= {row["id"]: instant for row in claimed if not row["superseded"]}
    waiting = [i for i, state in enumerate(case["steps"]) if state.waiting]
    assert went == {ids[i]: expected[i].goes_at for i in waiting if expected[i].goes_at}
    async with database.transaction() as session:  # nothing left for the next case to claim
        await session.execute(
            text("UPDATE steps SET fire_at = NULL WHERE invoice_id = :i"), {"i": invoice}
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=plans_with_holds())
def test_the_rule_and_the_sql_agree_on_when_each_step_goes(store, case):
    store.run(check(store.database, case))
