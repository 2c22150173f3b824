"""The AsyncAPI document partners and other teams read describes exactly the events in code."""

from relance.common.events import TOPICS, Payload
from relance.common.events.asyncapi import asyncapi_document


def test_every_event_type_is_listed_under_its_topic():
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    listed = {
        document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]: topic
        for topic, channel in document["channels"].items()
        for ref in channel["messages"].values()
    }
    expected = {
        cls.event_type: cls.topic
        for cls in Payload.registry.values()
        if not cls.event_type.startswith("test.")
    }
    assert listed == expected
    assert set(document["channels"]) == set(TOPICS)


def test_money_is_described_as_a_decimal_string_and_ids_as_uuids():
    schemas = asyncapi_document()["components"]["schemas"]
    invoice = schemas["InvoiceSnapshot"]["properties"]
    assert invoice["total"]["type"] == "string"
    assert "total" in schemas["InvoiceSnapshot"]["required"]
    assert schemas["ReminderDue"]["properties"]["step_id"]["format"] == "uuid"


def test_envelope_headers_are_required_on_every_message():
    for message in asyncapi_document()["components"]["messages"].values():
        assert "ce_id" in message["headers"]["required"]
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
