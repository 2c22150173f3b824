"""The CloudEvents 1.0 envelope in Kafka binary mode, and the registry of event types.

On the wire the message value is the JSON ``data``; the attributes travel as headers
(``ce_specversion``, ``ce_id``, ``ce_type``, ``ce_source``, ``ce_time``, ``ce_subject``,
``ce_organizationid``, ``content-type``, and the W3C ``traceparent`` when tracing is on);
the key is the invoice id, so that one invoice's events stay in order on one partition.

Payload classes declare their type and topic when defined
(``class InvoiceSent(Payload, event_type="invoice.sent", topic=TOPIC)``), which registers
them. Consumers ignore payload fields they do not know; a change that old consumers cannot
read gets a new type name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, ValidationError

from relance.common.tracing import current_traceparent

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class Payload(BaseModel):
    """The ``data`` of an event. Its ``subject`` (an id) is the message key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]
    registry: ClassVar[dict[str, type[Payload]]] = {}
    subject_field: ClassVar[str] = "invoice_id"

    @property
    def subject(self) -> str:
        return str(getattr(self, self.subject_field))

    def __init_subclass__(cls, *, event_type: str = "", topic: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if event_type:
            if event_type in Payload.registry:
                raise TypeError(f"event type {event_type!r} is defined twice")
            cls.event_type = event_type
            cls.topic = topic
            Payload.registry[event_type] = cls


class InvoicePayload(Payload):
    """An event about one invoice: keyed by its id, so one invoice's events stay in order."""

    invoice_id: UUID


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class Event(Generic[P]):
    id: UUID
    source: str
    time: datetime
    organization_id: UUID
    data: P
    # the span that caused the event (W3C trace context), when tracing is on
    traceparent: str | None = None

    @property
    def type(self) -> str:
        return self.data.event_type

    @property
    def topic(self) -> str:
        return self.data.topic

    @property
    def subject(self) -> str:
        return self.data.subject

    @classmethod
    def new(
        cls,
        data: P,
        *,
        source: str,
        organization_id: UUID,
        time: datetime,
        traceparent: str | None = None,
    ) -> Event[P]:
        """A new event, carrying ``traceparent`` or else the current span's."""
        if time.tzinfo is None:
            raise ValueError("event time must be timezone-aware")
        return cls(
            id=uuid4(),
            source=source,
            time=time,
            organization_id=organization_id,
            data=data,
            traceparent=traceparent or current_traceparent(),
        )


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class PoisonMessage(Exception):
    """A message no consumer can apply: unparseable, of an unknown type, or invalid."""

    def __init__(self, reason: str, *, event_id: str | None = None, event_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


def to_record(event: Event[Any]) -> KafkaRecord:
    headers = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": str(event.id),
        "ce_type": event.type,
        "ce_source": event.source,
        "ce_time": event.time.isoformat(),
        "ce_subject": event.subject,
        "ce_organizationid": str(event.organization_id),
        "content-type": CONTENT_TYPE,
    }
    if event.traceparent:
        headers["traceparent"] = event.traceparent
    return KafkaRecord(
        topic=event.topic,
        key=event.subject.encode(),
        value=event.data.model_dump_json().encode(),
        headers=[(name, value.encode()) for name, value in headers.items()],
    )


def from_record(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], value: bytes | None
) -> Event[Any]:
    """Read an event back; raises :class:`PoisonMessage` saying what is wrong with it."""
    try:
        attributes = {name: raw.decode() for name, raw in headers}
    except UnicodeDecodeError as exc:
        raise PoisonMessage("a CloudEvents header is not UTF-8") from exc
    event_id = attributes.get("ce_id")
    event_type = attributes.get("ce_type")
    if attributes.get("ce_specversion", SPEC_VERSION) != SPEC_VERSION:
        raise PoisonMessage(
            f"unsupported CloudEvents version {attributes['ce_specversion']!r}",
            event_id=event_id,
            event_type=event_type,
        )
    missing = [
        n
        for n in ("ce_id", "ce_type", "ce_source", "ce_time", "ce_organizationid")
        if n not in attributes
    ]
    if missing:
        raise PoisonMessage(
            f"missing CloudEvents headers: {', '.join(missing)}",
            event_id=event_id,
            event_type=event_type,
        )
    assert event_type is not None
    assert event_id is not None
    payload_cls = Payload.registry.get(event_type)
    if payload_cls is None:
        raise PoisonMessage(
            f"unknown event type {event_type!r}", event_id=event_id, event_type=event_type
        )
    try:
        data = payload_cls.model_validate(json.loads(value or b""))
        time = datetime.fromisoformat(attributes["ce_time"])
        if time.tzinfo is None:
            raise ValueError("ce_time has no UTC offset")
        return Event(
            id=UUID(event_id),
            source=attributes["ce_source"],
            time=time,
            organization_id=UUID(attributes["ce_organizationid"]),
            data=data,
            traceparent=_valid_traceparent(attributes.get("traceparent")),
        )
    except (ValueError, ValidationError) as exc:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise PoisonMessage(
            f"invalid {event_type} event: {exc}", event_id=event_id, event_type=event_type
        ) from exc


_TRACEPARENT = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
)


def _valid_traceparent(value: str | None) -> str | None:
    """A received ``traceparent`` kept only if well formed (W3C Trace Context): a bad one
    starts a new trace, it never makes the event unreadable."""
    return value if value is not None and _TRACEPARENT.fullmatch(value) else None
