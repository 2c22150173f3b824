"""The ``reminder.due`` outbox rows the firing loop writes are, byte for byte, those of the
pydantic event: the notifier and every other consumer read the same event either way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from relance.common.events import Event, from_record, to_record
from relance.common.events.reminder_events import ReminderDue
from relance.common.events.types import StepKind
from relance.common.outbox import outbox_row
from relance.scheduler.due_events import due_rows
from relance.scheduler.service import SOURCE

NOW = datetime(2026, 3, 31, 9, 0, 0, 417_203, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def step(kind: str, severity: int, scheduled_for: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "organization_id": uuid.uuid4(),
        "invoice_id": uuid.uuid4(),
        "kind": kind,
        "severity": severity,
        "scheduled_for": scheduled_for,
    }


STEPS = [
    step("issuance", 0, datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
    step("due", 2, datetime(2026, 3, 31, 7, 0, 0, 120_000, tzinfo=UTC)),
    step("due", 2, datetime(2026, 3, 31, 7, 0, 0, 120_000, tzinfo=UTC)),  # the same instant
    step("escalation_3", 5, datetime(2026, 4, 21, 7, 0, 0, 1, tzinfo=UTC)),
    step("pre_due", 1, datetime(2026, 3, 16, 9, 0, tzinfo=timezone(timedelta(hours=1)))),
]


def pydantic_row(values: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The row ``add_events`` writes for the step's ``ReminderDue``, with that event id."""
    event = Event(
        id=uuid.UUID(event_id),
        source=SOURCE,
        time=NOW,
        organization_id=values["organization_id"],
        data=ReminderDue(
            invoice_id=values["invoice_id"],
            step_id=values["id"],
            kind=values["kind"],
            severity=values["severity"],
            scheduled_for=values["scheduled_for"],
        ),
    )
    return outbox_row(event)


def test_each_row_is_the_one_the_pydantic_event_gives():
    rows = due_rows(STEPS, NOW, source=SOURCE)

    assert len(rows) == len(STEPS)
    for position, values in enumerate(STEPS):
        expected = pydantic_row(values, rows.event_ids[position])
        assert expected["event_type"] == "reminder.due"
        assert expected["topic"] == "reminder-events"
        assert rows.keys[position] == expected["key"]
        assert rows.values[position] == expected["value"]  # the same bytes, not only JSON
        assert json.loads(rows.headers[position]) == expected["headers"]


def test_a_consumer_reads_back_the_event_of_the_step():
    rows = due_rows(STEPS[1:2], NOW, source=SOURCE)
    headers = json.loads(rows.headers[0])

    event = from_record([(n, v.encode()) for n, v in headers.items()], rows.values[0])

    assert event.id == uuid.UUID(rows.event_ids[0])
    assert event.type == "reminder.due"
    assert event.time == NOW
    assert event.organization_id == STEPS[1]["organization_id"]
    assert event.data.step_id == STEPS[1]["id"]
    assert event.data.scheduled_for == STEPS[1]["scheduled_for"]


def test_every_event_gets_its_own_random_id():
    ids = due_rows(STEPS * 200, NOW, source=SOURCE).event_ids

    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {4}
    assert {uuid.UUID(i).variant for i in ids} == {uuid.RFC_4122}


def test_a_traceparent_is_a_header_only_for_the_steps_that_carry_one():
    traceparents = [TRACEPARENT, None, None, None, None]
    traced = due_rows(STEPS, NOW, source=SOURCE, traceparents=traceparents)

    first = json.loads(traced.headers[0])
    assert first.pop("traceparent") == TRACEPARENT
    assert first == pydantic_row(STEPS[0], traced.event_ids[0])["headers"]
    for position in range(1, len(STEPS)):
        assert "traceparent" not in json.loads(traced.headers[position])
    assert traced.values == due_rows(STEPS, NOW, source=SOURCE).values


def test_the_headers_match_the_records_sent_to_kafka():
    rows = due_rows(STEPS[:1], NOW, source=SOURCE)
    record = to_record(
        Event(
            id=uuid.UUID(rows.event_ids[0]),
            source=SOURCE,
            time=NOW,
            organization_id=STEPS[0]["organization_id"],
            data=ReminderDue(
                invoice_id=STEPS[0]["invoice_id"],
                step_id=STEPS[0]["id"],
                kind=StepKind.ISSUANCE,
                severity=0,
                scheduled_for=STEPS[0]["scheduled_for"],
            ),
        )
    )
    headers = json.loads(rows.headers[0])

    assert sorted((n, v.encode()) for n, v in headers.items()) == sorted(record.headers)
    assert rows.values[0] == record.value


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "reminder"), ("severity", 6), ("severity", -1)]
)
def test_a_step_the_event_schema_refuses_is_refused(field, value):
    bad = {**STEPS[0], field: value}
    with pytest.raises(ValidationError):
        pydantic_row(bad, str(uuid.uuid4()))

    with pytest.raises(ValueError, match=str(bad["id"])):
        due_rows([STEPS[1], bad], NOW, source=SOURCE)


def test_a_naive_event_time_is_refused_as_for_any_event():
    with pytest.raises(ValueError, match="timezone-aware"):
        due_rows(STEPS, NOW.replace(tzinfo=None), source=SOURCE)
