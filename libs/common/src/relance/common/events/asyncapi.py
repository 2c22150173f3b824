"""The AsyncAPI 3 document of every topic and event type, built from the payload models.

Served by every service at ``GET /asyncapi.json``, so the description cannot drift from
the code that reads and writes the events.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from relance.common.events.envelope import CONTENT_TYPE, SPEC_VERSION, Payload

_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
        "ce_subject",
        "ce_organizationid",
    ],
    "properties": {
        "ce_specversion": {"type": "string", "const": SPEC_VERSION},
        "ce_id": {"type": "string", "format": "uuid", "description": "unique per event"},
        "ce_type": {"type": "string", "description": "the event type, e.g. invoice.sent"},
        "ce_source": {"type": "string", "description": "the emitting service"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {
            "type": "string",
            "format": "uuid",
            "description": "the key: the invoice id (the organization id on organization-events)",
        },
        "ce_organizationid": {"type": "string", "format": "uuid"},
        "content-type": {"type": "string", "const": CONTENT_TYPE},
        "traceparent": {
            "type": "string",
            "description": "W3C Trace Context of the span that caused the event, present when "
            "the emitting service traces (OTEL_* variables); a malformed one is ignored",
        },
    },
}


def asyncapi_document() -> dict[str, Any]:
    payloads = sorted(Payload.registry.values(), key=lambda cls: cls.event_type)
    payloads = [cls for cls in payloads if not cls.event_type.startswith("test.")]
    keyed, definitions = models_json_schema(
        [(cls, "serialization") for cls in payloads],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for cls in payloads:
        message_id = cls.event_type.replace(".", "_")
        messages[message_id] = {
            "name": cls.event_type,
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "contentType": CONTENT_TYPE,
            "headers": _HEADERS_SCHEMA,
            "payload": keyed[(cls, "serialization")],
            "bindings": {"kafka": {"key": {"type": "string", "format": "uuid"}}},
        }
        channel = channels.setdefault(
            cls.topic,
            {"address": cls.topic, "description": f"Kafka topic {cls.topic}", "messages": {}},
        )
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Relance events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in Kafka binary mode: the JSON data is the value, "
            "the attributes are ce_ headers, the key is the invoice id.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }
