"""Steps fire at their time, once, with the catch-up rule and the holds of docs/domain.md."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from prometheus_client import REGISTRY

from relance.common.db import Database
from relance.common.events.invoice_events import PaymentScheduled
from relance.common.events.payment_events import (
    PaymentSuggested,
    SuggestionConfirmed,
    SuggestionRejected,
)
from relance.scheduler.workers import StepFiring

from ..conftest import at
from .test_planning import DUE, SENT, payment


async def test_each_step_fires_at_its_time_and_only_once(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    steps = await scheduler.steps(invoice)

    [issuance] = await scheduler.fire_at(SENT)
    assert issuance == {
        "invoice_id": str(invoice),
        "step_id": str(steps[0]["id"]),
        "kind": "issuance",
        "severity": 0,
        "scheduled_for": issuance["scheduled_for"],
    }
    assert await scheduler.fire_at(at("2026-03-16 08:59")) == []
    [pre_due] = await scheduler.fire_at(at("2026-03-16 09:00"))
    assert pre_due["step_id"] == str(steps[1]["id"])
    assert await scheduler.fire_at(at("2026-03-16 09:00")) == []
    fired = await scheduler.fire_at(at("2026-03-31 09:00:01"))
    assert [f["kind"] for f in fired] == ["due"]


def fire_lag() -> tuple[float, float]:
    """What an operator's dashboard reads of relance_step_fire_lag_seconds: count and sum."""
    count = REGISTRY.get_sample_value("relance_step_fire_lag_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("relance_step_fire_lag_seconds_sum") or 0.0
    return count, total


async def test_how_late_steps_fire_is_measured_for_the_operator(scheduler):
    await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    count, total = fire_lag()

    # the pre_due step was due at 09:00; the scheduler fires it 90 s late
    [pre_due] = await scheduler.fire_at(at("2026-03-16 09:01:30"))

    assert pre_due["kind"] == "pre_due"
    later_count, later_total = fire_lag()
    assert later_count == count + 1
    assert later_total - total == 90.0


async def test_an_old_imported_invoice_sends_only_its_latest_past_step(scheduler):
    # sent 2 Feb, due 10 Feb; imported on 2 March: due and escalation_1 (17 Feb) are past
    invoice = await scheduler.send(
        sent_at=at("2026-02-02 10:00"), due=date(2026, 2, 10), imported=True
    )
    fired = await scheduler.fire_at(at("2026-03-02 10:00"))
    assert [f["kind"] for f in fired] == ["escalation_2"]
    assert await scheduler.statuses(invoice) == [
        ("issuance", "skipped"),
        ("pre_due", "skipped"),
        ("due", "skipped"),
        ("escalation_1", "skipped"),
        ("escalation_2", "planned"),
        ("escalation_3", "planned"),
    ]
    published = (await scheduler.outbox("reminder.planned"))[-1]["steps"]
    assert [s["status"] for s in published][:4] == ["skipped"] * 4
    assert published[1]["reason"].startswith("a later step was due")


async def test_a_scheduler_that_was_down_sends_only_the_latest_step_on_return(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    fired = await scheduler.fire_at(at("2026-04-09 12:00"))  # due and escalation_1 missed
    assert [f["kind"] for f in fired] == ["escalation_1"]
    assert [status for _, status in await scheduler.statuses(invoice)] == [
        "planned",  # issuance, with the notifier
        "skipped",
        "skipped",
        "planned",  # escalation_1, fired
        "planned",
        "planned",
    ]


async def test_a_scheduled_payment_holds_until_two_business_days_after_its_date(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    # announced for Friday 27 March: held through P + 2 bd (Tue 31), released Wed 1 April
    await scheduler.apply(PaymentScheduled(invoice_id=invoice, planned_on=date(2026, 3, 27)))
    assert [f["kind"] for f in await scheduler.fire_at(at("2026-03-16 09:00"))] == []
    assert await scheduler.fire_at(at("2026-03-31 23:59")) == []
    fired = await scheduler.fire_at(at("2026-04-01 09:00"))
    assert [f["kind"] for f in fired] == ["due"]  # pre_due skipped: only the latest goes
    assert (await scheduler.statuses(invoice))[1] == ("pre_due", "skipped")
    # the plan after the hold is untouched
    assert [f["kind"] for f in await scheduler.fire_at(at("2026-04-08 09:00"))] == ["escalation_1"]


async def test_a_step_a_hold_kept_back_shows_as_gone_once_the_hold_ends(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    # announced for Monday 16 March: only pre_due (16 March) is held, until Thursday 19
    await scheduler.apply(PaymentScheduled(invoice_id=invoice, planned_on=date(2026, 3, 16)))
    pre_due = (await scheduler.outbox("reminder.planned"))[-1]["steps"][1]
    assert (pre_due["held"], pre_due["goes_at"]) == (True, "2026-03-19T08:00:00Z")
    assert [f["kind"] for f in await scheduler.fire_at(at("2026-03-19 09:00"))] == ["pre_due"]
    pre_due = (await scheduler.outbox("reminder.planned"))[-1]["steps"][1]
    assert (pre_due["held"], pre_due["goes_at"]) == (False, "2026-03-19T08:00:00Z")


async def test_a_suggested_match_holds_until_a_person_rejects_it(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.fire_at(SENT)
    match = uuid.uuid4()
    await scheduler.apply(suggestion(invoice, match))
    assert await scheduler.fire_at(at("2026-04-09 09:00")) == []
    await scheduler.apply(SuggestionRejected(invoice_id=invoice, match_id=match))
    fired = await scheduler.fire_at(at("2026-04-09 09:00"))
    assert [f["kind"] for f in fired] == ["escalation_1"]


async def test_a_confirmed_match_that_pays_in_full_cancels_the_rest(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    match = uuid.uuid4()
    await scheduler.apply(suggestion(invoice, match))
    await scheduler.apply(SuggestionConfirmed(invoice_id=invoice, match_id=match))
    await scheduler.apply(payment(invoice, "0.00"))
    assert await scheduler.fire_at(at("2026-05-01 09:00")) == []
    assert {status for _, status in await scheduler.statuses(invoice)} == {"cancelled"}


async def test_a_suggestion_read_before_the_invoice_was_planned_still_holds(scheduler):
    invoice = uuid.uuid4()
    await scheduler.apply(suggestion(invoice, uuid.uuid4()))
    await scheduler.send(sent_at=SENT, due=DUE, invoice_id=invoice)
    assert await scheduler.fire_at(SENT) == []


async def test_a_plan_made_while_a_suggestion_waits_is_published_held(scheduler):
    invoice = uuid.uuid4()
    await scheduler.apply(suggestion(invoice, uuid.uuid4()))
    await scheduler.send(sent_at=SENT, due=DUE, invoice_id=invoice)
    (published,) = await scheduler.outbox("reminder.planned")
    assert {(s["held"], s["hold_reason"], s["goes_at"]) for s in published["steps"]} == {
        (True, "payment_detected", None)
    }


async def test_a_suggestion_from_another_organization_holds_nothing(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    await scheduler.apply(suggestion(invoice, uuid.uuid4()), uuid.uuid4())
    assert [f["kind"] for f in await scheduler.fire_at(SENT)] == ["issuance"]


async def test_a_late_suggestion_of_a_decided_match_does_not_hold_again(scheduler):
    invoice = await scheduler.send(sent_at=SENT, due=DUE)
    match = uuid.uuid4()
    await scheduler.apply(SuggestionRejected(invoice_id=invoice, match_id=match))
    await scheduler.apply(suggestion(invoice, match))
    assert [f["kind"] for f in await scheduler.fire_at(SENT)] == ["issuance"]


async def test_two_replicas_fire_every_step_exactly_once(scheduler, clock):
    for _ in range(400):
        await scheduler.send(sent_at=SENT, due=DUE, imported=True)
    clock.set(at("2026-03-16 09:00"))  # pre_due of all 400 is due
    other = Database(scheduler.database.url, pool_size=5)
    replicas = [
        StepFiring(scheduler.database, clock, batch_size=7),
        StepFiring(other, clock, batch_size=7),
    ]
    try:
        await asyncio.gather(*(drain(replica) for replica in replicas))
    finally:
        await other.dispose()
    fired = Counter(event["step_id"] for event in await scheduler.outbox("reminder.due"))
    assert len(fired) == 400
    assert set(fired.values()) == {1}
    assert all(replica.fired > 0 for replica in replicas)  # both took part


async def test_a_burst_claimed_by_several_transactions_at_once_sends_one_reminder_each(
    scheduler, clock
):
    # 150 old invoices imported at once: due and escalation_1 are past for each of them
    invoices = [
        await scheduler.send(sent_at=at("2026-02-02 10:00"), due=date(2026, 2, 10), imported=True)
        for _ in range(150)
    ]
    clock.set(at("2026-03-02 10:00"))
    firing = StepFiring(scheduler.database, clock, batch_size=7, claims_in_flight=3)

    await firing.fire_all_due()

    sent = await scheduler.outbox("reminder.due")
    assert Counter(event["invoice_id"] for event in sent) == {str(i): 1 for i in invoices}
    assert {event["kind"] for event in sent} == {"escalation_2"}
    assert await scheduler.fire_at(at("2026-03-02 10:00")) == []  # nothing left due


async def drain(replica: StepFiring) -> None:
    claimed = 1
    while claimed:
        claimed = await replica.fire_due()
        await asyncio.sleep(0)  # let the other replica claim in between


def suggestion(invoice_id: uuid.UUID, match_id: uuid.UUID) -> PaymentSuggested:
    return PaymentSuggested(
        invoice_id=invoice_id,
        match_id=match_id,
        bank_reference="BANK-1",
        amount="1200.00",
        currency="EUR",
        booked_on=date(2026, 3, 20),
        confidence=0.8,
    )


async def test_the_loop_sleeps_until_the_next_step_and_wakes_when_one_is_planned(scheduler, clock):
    clock.set(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    loop = asyncio.create_task(scheduler.firing.run())
    try:
        await scheduler.send(sent_at=clock.now() - timedelta(minutes=1), due=DUE)
        for _ in range(100):
            if await scheduler.outbox("reminder.due"):
                break
            await asyncio.sleep(0.05)
        [issuance] = await scheduler.outbox("reminder.due")
        assert issuance["kind"] == "issuance"
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
