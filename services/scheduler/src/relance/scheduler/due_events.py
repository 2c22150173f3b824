"""The outbox rows of ``reminder.due`` events, built without a pydantic model per step.

A burst fires tens of thousands of steps, and building a ``ReminderDue`` and an ``Event``
per step, then their record and outbox row, cost the firing loop more than the database
did. The payload is five fields whose JSON has one spelling, so the rows are written here
directly: the same bytes as ``outbox_row(Event.new(ReminderDue(...)))`` gives (value, key
and headers; ``tests/unit/test_due_events.py`` compares the two), with a new event id each.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from relance.common.events.envelope import CONTENT_TYPE, SPEC_VERSION
from relance.common.events.reminder_events import ReminderDue
from relance.common.events.types import StepKind

EVENT_TYPE = ReminderDue.event_type
TOPIC = ReminderDue.topic
TRACEPARENT = "traceparent"  # the W3C trace context header, when a step carries one

_KINDS = frozenset(kind.value for kind in StepKind)
_SEVERITY = ReminderDue.model_fields["severity"]
_ZERO = timedelta(0)
_DATETIME_JSON = TypeAdapter(datetime)


@dataclass(slots=True)
class DueRows:
    """Column values of the outbox rows, one list per column, in the order of the steps."""

    event_ids: list[str] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # JSON objects, as the column holds them

    def __len__(self) -> int:
        return len(self.event_ids)


def due_rows(
    steps: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    source: str,
    traceparents: Sequence[str | None] | None = None,
) -> DueRows:
    """The ``reminder.due`` of each step (``id``, ``organization_id``, ``invoice_id``,
    ``kind``, ``severity``, ``scheduled_for``), at ``now``. A step's ``traceparent``, when
    not None, is added as the header of that name. Raises ValueError for a step that
    ``ReminderDue`` would refuse (an unknown kind, a severity out of range)."""
    if now.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    rows = DueRows()
    if not steps:
        return rows
    # the headers every row shares, as JSON fragments around its own values
    head = (
        "{"
        + _pair("ce_specversion", SPEC_VERSION)
        + ","
        + _pair("ce_type", EVENT_TYPE)
        + ","
        + _pair("ce_source", source)
        + ","
        + _pair("ce_time", now.isoformat())
        + ","
        + _pair("content-type", CONTENT_TYPE)
        + ',"ce_id":"'
    )
    times: dict[datetime, str] = {}  # a burst shares a few instants: each is formatted once
    event_ids = _uuid4_strings(len(steps))
    low, high = _severity_bounds()
    for position, step in enumerate(steps):
        kind = step["kind"]
        if kind not in _KINDS:
            raise ValueError(f"step {step['id']} has an unknown kind {kind!r}")
        severity = step["severity"]
        if type(severity) is not int or not low <= severity <= high:
            raise ValueError(f"step {step['id']} has a severity out of range: {severity!r}")
        at = step["scheduled_for"]
        scheduled_for = times.get(at)
        if scheduled_for is None:
            scheduled_for = times[at] = _json_datetime(at)
        invoice = str(step["invoice_id"])
        event_id = event_ids[position]
        headers = (
            f'{head}{event_id}","ce_subject":"{invoice}",'
            f'"ce_organizationid":"{step["organization_id"]}"'
        )
        if traceparents is not None and (traceparent := traceparents[position]) is not None:
            headers += "," + _pair(TRACEPARENT, traceparent)
        rows.event_ids.append(event_id)
        rows.keys.append(invoice.encode())
        rows.values.append(
            f'{{"invoice_id":"{invoice}","step_id":"{step["id"]}","kind":"{kind}",'
            f'"severity":{severity},"scheduled_for":{scheduled_for}}}'.encode()
        )
        rows.headers.append(headers + "}")
    return rows


def _pair(name: str, value: str) -> str:
    return json.dumps(name) + ":" + json.dumps(value)


def _json_datetime(at: datetime) -> str:
    """``at`` as pydantic writes it in JSON: ISO 8601, ``Z`` for UTC."""
    if at.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    if at.utcoffset() == _ZERO:
        return '"' + at.isoformat()[:-6] + 'Z"'
    return _DATETIME_JSON.dump_json(at).decode()


def _severity_bounds() -> tuple[int, int]:
    low, high = 0, 5
    for rule in _SEVERITY.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def _uuid4_strings(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs in their text form, from one read of urandom."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes((byte & 0x0F) | 0x40 for byte in raw[6::16])  # version 4
    raw[8::16] = bytes((byte & 0x3F) | 0x80 for byte in raw[8::16])  # RFC 4122 variant
    text = raw.hex()
    return [
        f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-{text[i + 12 : i + 16]}-"
        f"{text[i + 16 : i + 20]}-{text[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]
