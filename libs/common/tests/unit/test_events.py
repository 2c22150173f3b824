"""The CloudEvents envelope on Kafka, the payload registry, and what makes a poison message."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from relance.common import events
from relance.common.events import (
    TOPICS,
    Event,
    InvoicePayload,
    KafkaRecord,
    Payload,
    PoisonMessage,
    from_record,
    invoice_events,
    notification_events,
    organization_events,
    payment_events,
    reminder_events,
    to_record,
)
from relance.common.events.types import (
    CustomerSnapshot,
    InvoiceSnapshot,
    OrganizationSnapshot,
    StepKind,
    StepStatus,
    StepView,
)

ORGANIZATION_ID = UUID("0b3d1c8e-58a4-4c1e-9f43-1a2b3c4d5e6f")
INVOICE_ID = UUID("6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b")
CUSTOMER_ID = UUID("11111111-2222-4333-8444-555555555555")
STEP_ID = UUID("22222222-3333-4444-8555-666666666666")
MATCH_ID = UUID("33333333-4444-4555-8666-777777777777")
PAYMENT_ID = UUID("44444444-5555-4666-8777-888888888888")
SENT_AT = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
LIBRARY_MODULES = (
    organization_events,
    invoice_events,
    reminder_events,
    notification_events,
    payment_events,
)
REQUIRED_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_time", "ce_organizationid")

ORGANIZATION = OrganizationSnapshot(id=ORGANIZATION_ID, name="Atelier Dupont")
CUSTOMER = CustomerSnapshot(
    id=CUSTOMER_ID,
    name="Boulangerie Martin SARL",
    email="compta@boulangerie-martin.fr",
    locale="fr",
    ibans=("FR7630006000011234567890189",),
)
INVOICE = InvoiceSnapshot(
    number="F-2026-0042",
    currency="EUR",
    total=Decimal("1250.00"),
    paid=Decimal("250.00"),
    balance=Decimal("1000.00"),
    issue_date=date(2026, 3, 2),
    due_date=date(2026, 4, 1),
    sent_at=SENT_AT,
    payment_reference="RF18F20260042",
)

SAMPLE_PAYLOADS: list[Payload] = [
    invoice_events.InvoiceSent(
        invoice_id=INVOICE_ID, organization=ORGANIZATION, customer=CUSTOMER, invoice=INVOICE
    ),
    invoice_events.InvoiceUpdated(
        invoice_id=INVOICE_ID,
        organization=ORGANIZATION,
        customer=CUSTOMER,
        invoice=INVOICE,
        previous_due_date=date(2026, 3, 25),
    ),
    invoice_events.PaymentReported(
        invoice_id=INVOICE_ID,
        payment_id=PAYMENT_ID,
        amount=Decimal("250.00"),
        currency="EUR",
        paid_on=date(2026, 3, 20),
        reference="VIR F-2026-0042",
        total=Decimal("1250.00"),
        paid=Decimal("250.00"),
        balance=Decimal("1000.00"),
    ),
    invoice_events.PaymentScheduled(invoice_id=INVOICE_ID, planned_on=date(2026, 4, 10)),
    invoice_events.RemindersSuspended(
        invoice_id=INVOICE_ID, reason="disputed", suspended_at=SENT_AT + timedelta(days=3)
    ),
    invoice_events.InvoiceHandedToCollection(
        invoice_id=INVOICE_ID, handed_at=SENT_AT + timedelta(days=90)
    ),
    reminder_events.ReminderPlanned(
        invoice_id=INVOICE_ID,
        steps=(
            StepView(
                step_id=STEP_ID,
                kind=StepKind.ISSUANCE,
                severity=0,
                scheduled_for=SENT_AT,
                status=StepStatus.SENT,
                sent_at=SENT_AT,
            ),
            StepView(
                step_id=UUID("55555555-6666-4777-8888-999999999999"),
                kind=StepKind.DUE,
                severity=2,
                scheduled_for=datetime(2026, 4, 1, 7, 0, tzinfo=UTC),
                status=StepStatus.PLANNED,
            ),
        ),
    ),
    reminder_events.ReminderDue(
        invoice_id=INVOICE_ID,
        step_id=STEP_ID,
        kind=StepKind.ESCALATION_1,
        severity=3,
        scheduled_for=datetime(2026, 4, 8, 7, 0, tzinfo=UTC),
    ),
    notification_events.EmailSent(
        invoice_id=INVOICE_ID,
        step_id=STEP_ID,
        kind=StepKind.ESCALATION_1,
        message_id="<42@relance.example>",
        recipient="compta@boulangerie-martin.fr",
        sent_at=datetime(2026, 4, 8, 7, 0, 3, tzinfo=UTC),
    ),
    notification_events.EmailFailed(
        invoice_id=INVOICE_ID,
        step_id=STEP_ID,
        kind=StepKind.ESCALATION_3,
        reason="550 5.1.1 mailbox unavailable",
        failed_at=datetime(2026, 4, 22, 7, 0, tzinfo=UTC),
    ),
    payment_events.PaymentMatched(
        invoice_id=INVOICE_ID,
        match_id=MATCH_ID,
        bank_reference="VIR SEPA F-2026-0042",
        amount=Decimal("1000.00"),
        currency="EUR",
        booked_on=date(2026, 4, 2),
    ),
    payment_events.PaymentSuggested(
        invoice_id=INVOICE_ID,
        match_id=MATCH_ID,
        bank_reference="VIR MARTIN",
        amount=Decimal("999.99"),
        currency="EUR",
        booked_on=date(2026, 4, 2),
        confidence=0.75,
    ),
    payment_events.SuggestionConfirmed(invoice_id=INVOICE_ID, match_id=MATCH_ID),
    payment_events.SuggestionRejected(invoice_id=INVOICE_ID, match_id=MATCH_ID),
    organization_events.OrganizationSaved(
        organization_id=ORGANIZATION_ID, organization=ORGANIZATION, api_key_sha256="ab" * 32
    ),
    invoice_events.InvoiceStatusChanged(
        invoice_id=INVOICE_ID,
        status="to_collect",
        previous_status="not_due",
        changed_at=SENT_AT + timedelta(days=30),
    ),
]


def new_event(data: Payload, *, time: datetime = SENT_AT) -> Event[Any]:
    return Event.new(data, source="invoice-api", organization_id=ORGANIZATION_ID, time=time)


def header_values(record: KafkaRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def without_header(record: KafkaRecord, *names: str) -> list[tuple[str, bytes]]:
    return [(name, value) for name, value in record.headers if name not in names]


def with_header(record: KafkaRecord, name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(n, value if n == name else v) for n, v in record.headers]


def payment_reported_record() -> KafkaRecord:
    return to_record(new_event(SAMPLE_PAYLOADS[2]))


def json_floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in json_floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in json_floats(item)]
    return []


@pytest.fixture
def restored_registry() -> Iterator[dict[str, type[Payload]]]:
    """Test-only payload classes register themselves: forget them after the test."""
    saved = dict(Payload.registry)
    yield Payload.registry
    Payload.registry.clear()
    Payload.registry.update(saved)


# --- round trip ----------------------------------------------------------------------------


def test_samples_cover_every_event_type_of_the_library() -> None:
    library_types = {
        event_type
        for event_type, cls in Payload.registry.items()
        if cls.__module__.startswith("relance.common.events.")
    }
    assert {payload.event_type for payload in SAMPLE_PAYLOADS} == library_types
    assert len(library_types) == 16


@pytest.mark.parametrize("payload", SAMPLE_PAYLOADS, ids=lambda p: p.event_type)
def test_event_read_back_from_its_record_equals_the_event_sent(payload: Payload) -> None:
    event = new_event(payload)
    record = to_record(event)
    assert from_record(record.headers, record.value) == event


@pytest.mark.parametrize("payload", SAMPLE_PAYLOADS, ids=lambda p: p.event_type)
def test_event_read_back_keeps_id_type_source_time_organization_and_payload_class(
    payload: Payload,
) -> None:
    event = new_event(payload)
    record = to_record(event)
    read = from_record(tuple(record.headers), record.value)  # aiokafka gives a tuple
    assert read.id == event.id
    assert read.type == payload.event_type
    assert read.source == "invoice-api"
    assert read.time == SENT_AT
    assert read.organization_id == ORGANIZATION_ID
    assert type(read.data) is type(payload)
    assert read.data == payload


@pytest.mark.parametrize("payload", SAMPLE_PAYLOADS, ids=lambda p: p.event_type)
def test_record_goes_to_the_payload_topic_keyed_by_its_subject(payload: Payload) -> None:
    record = to_record(new_event(payload))
    assert record.topic == payload.topic
    assert record.topic in TOPICS
    subject = ORGANIZATION_ID if payload.topic == organization_events.TOPIC else INVOICE_ID
    assert record.key == str(subject).encode()


@pytest.mark.parametrize("payload", SAMPLE_PAYLOADS, ids=lambda p: p.event_type)
def test_record_carries_the_cloudevents_attributes_as_headers(payload: Payload) -> None:
    event = new_event(payload)
    headers = header_values(to_record(event))
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": str(event.id),
        "ce_type": payload.event_type,
        "ce_source": "invoice-api",
        "ce_time": "2026-03-02T10:15:00+00:00",
        "ce_subject": payload.subject,
        "ce_organizationid": str(ORGANIZATION_ID),
        "content-type": "application/json",
    }


def test_record_headers_are_bytes_with_one_of_each_name() -> None:
    record = to_record(new_event(SAMPLE_PAYLOADS[0]))
    names = [name for name, _ in record.headers]
    assert len(names) == len(set(names)) == 8
    assert all(isinstance(value, bytes) for _, value in record.headers)


def test_record_value_is_the_payload_as_json() -> None:
    payload = SAMPLE_PAYLOADS[0]
    record = to_record(new_event(payload))
    document = json.loads(record.value)
    assert document["invoice_id"] == str(INVOICE_ID)
    assert document["invoice"]["number"] == "F-2026-0042"
    assert document["invoice"]["due_date"] == "2026-04-01"
    assert document["customer"]["ibans"] == ["FR7630006000011234567890189"]
    assert document["organization"]["country"] == "FR"


def test_event_time_in_another_zone_travels_with_its_offset() -> None:
    time = datetime(2026, 3, 2, 11, 15, tzinfo=PARIS)
    record = to_record(new_event(SAMPLE_PAYLOADS[3], time=time))
    assert header_values(record)["ce_time"] == "2026-03-02T11:15:00+01:00"
    read = from_record(record.headers, record.value)
    assert read.time == time
    assert read.time.utcoffset() == timedelta(hours=1)


def test_event_properties_come_from_its_payload() -> None:
    payload = SAMPLE_PAYLOADS[7]
    event = new_event(payload)
    assert event.type == "reminder.due"
    assert event.topic == reminder_events.TOPIC
    assert event.subject == str(INVOICE_ID)


def test_each_new_event_gets_its_own_id() -> None:
    ids = {new_event(SAMPLE_PAYLOADS[0]).id for _ in range(20)}
    assert len(ids) == 20


def test_new_event_with_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_event(SAMPLE_PAYLOADS[0], time=datetime(2026, 3, 2, 10, 15))


def test_unknown_extra_header_is_ignored() -> None:
    event = new_event(SAMPLE_PAYLOADS[0])
    record = to_record(event)
    headers = [*record.headers, ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-01")]
    assert from_record(headers, record.value) == event


# --- money ---------------------------------------------------------------------------------


def test_invoice_amounts_travel_as_decimal_strings() -> None:
    record = to_record(new_event(SAMPLE_PAYLOADS[0]))
    invoice = json.loads(record.value)["invoice"]
    assert invoice["total"] == "1250.00"
    assert invoice["paid"] == "250.00"
    assert invoice["balance"] == "1000.00"
    assert b'"total":"1250.00"' in record.value


def test_payment_amounts_travel_as_decimal_strings() -> None:
    document = json.loads(payment_reported_record().value)
    assert document["amount"] == "250.00"
    assert document["total"] == "1250.00"
    assert document["paid"] == "250.00"
    assert document["balance"] == "1000.00"


@pytest.mark.parametrize(
    "payload",
    [p for p in SAMPLE_PAYLOADS if not isinstance(p, payment_events.PaymentSuggested)],
    ids=lambda p: p.event_type,
)
def test_no_float_is_ever_written_for_money(payload: Payload) -> None:
    # PaymentSuggested is left out: its confidence is a float by design, its amount is not
    assert json_floats(json.loads(to_record(new_event(payload)).value)) == []


def test_suggested_payment_amount_is_a_string_while_confidence_is_a_number() -> None:
    document = json.loads(to_record(new_event(SAMPLE_PAYLOADS[11])).value)
    assert document["amount"] == "999.99"
    assert document["confidence"] == 0.75


def test_scheduled_payment_without_amount_writes_null() -> None:
    document = json.loads(to_record(new_event(SAMPLE_PAYLOADS[3])).value)
    assert document["amount"] is None
    assert document["planned_on"] == "2026-04-10"


@pytest.mark.parametrize("amount", ["0.10", "0.30", "1250.00", "1234567.89", "0.00", "-15.50"])
def test_money_read_back_is_the_exact_decimal_with_its_trailing_zeros(amount: str) -> None:
    payload = payment_events.PaymentMatched(
        invoice_id=INVOICE_ID,
        match_id=MATCH_ID,
        bank_reference="VIR",
        amount=Decimal(amount),
        currency="EUR",
        booked_on=date(2026, 4, 2),
    )
    record = to_record(new_event(payload))
    assert json.loads(record.value)["amount"] == amount
    read = from_record(record.headers, record.value)
    assert isinstance(read.data.amount, Decimal)
    assert str(read.data.amount) == amount


def test_sum_of_amounts_read_back_is_exact() -> None:
    record = to_record(new_event(SAMPLE_PAYLOADS[2]))
    document = json.loads(record.value)
    document["amount"] = "0.10"
    document["paid"] = "0.20"
    read = from_record(record.headers, json.dumps(document).encode())
    assert read.data.amount + read.data.paid == Decimal("0.30")


# --- poison messages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"not json", b"{", b"", None, b'{"invoice_id": }'],
    ids=["text", "truncated", "empty", "none", "broken"],
)
def test_value_that_is_not_json_is_a_poison_message(value: bytes | None) -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record(record.headers, value)
    assert caught.value.reason.startswith("invalid payment.reported event")
    assert caught.value.event_type == "payment.reported"
    assert caught.value.event_id == header_values(record)["ce_id"]


def test_value_that_is_not_utf8_is_a_poison_message() -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage, match=r"invalid payment\.reported event"):
        from_record(record.headers, b'{"invoice_id": "\xff\xfe"}')


@pytest.mark.parametrize("value", [b"[1, 2]", b'"a string"', b"42", b"null"])
def test_value_that_is_json_but_not_an_object_is_a_poison_message(value: bytes) -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage, match=r"invalid payment\.reported event"):
        from_record(record.headers, value)


@pytest.mark.parametrize("name", ["ce_type", "ce_id", "ce_source", "ce_organizationid"])
def test_header_that_is_not_utf8_is_a_poison_message(name: str) -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record(with_header(record, name, b"\xff\xfe\xfd"), record.value)
    assert "not UTF-8" in caught.value.reason


@pytest.mark.parametrize("name", REQUIRED_HEADERS)
def test_missing_required_header_is_a_poison_message_that_names_it(name: str) -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record(without_header(record, name), record.value)
    assert caught.value.reason == f"missing CloudEvents headers: {name}"


def test_poison_message_names_every_missing_header() -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record(without_header(record, "ce_source", "ce_time"), record.value)
    assert "ce_source" in caught.value.reason
    assert "ce_time" in caught.value.reason
    assert caught.value.event_type == "payment.reported"
    assert caught.value.event_id == header_values(record)["ce_id"]


def test_message_without_any_header_is_a_poison_message() -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record([], record.value)
    assert all(name in caught.value.reason for name in REQUIRED_HEADERS)
    assert caught.value.event_id is None
    assert caught.value.event_type is None


def test_unknown_event_type_is_a_poison_message_that_names_it() -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage) as caught:
        from_record(with_header(record, "ce_type", b"invoice.exploded"), record.value)
    assert caught.value.reason == "unknown event type 'invoice.exploded'"
    assert caught.value.event_type == "invoice.exploded"
    assert caught.value.event_id == header_values(record)["ce_id"]


def _drop(field: str) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        del document[field]

    return mutate


def _set(field: str, value: Any) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        document[field] = value

    return mutate


def _set_in(parent: str, field: str, value: Any) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        document[parent][field] = value

    return mutate


@pytest.mark.parametrize(
    ("payload", "mutate", "field"),
    [
        (SAMPLE_PAYLOADS[2], _drop("payment_id"), "payment_id"),
        (SAMPLE_PAYLOADS[2], _drop("invoice_id"), "invoice_id"),
        (SAMPLE_PAYLOADS[2], _set("amount", "douze euros"), "amount"),
        (SAMPLE_PAYLOADS[2], _set("paid_on", "le 20 mars"), "paid_on"),
        (SAMPLE_PAYLOADS[0], _set("invoice_id", "not-a-uuid"), "invoice_id"),
        (SAMPLE_PAYLOADS[0], _set_in("organization", "reminder_time", "25:00"), "reminder_time"),
        (SAMPLE_PAYLOADS[0], _drop("invoice"), "invoice"),
        (SAMPLE_PAYLOADS[7], _set("severity", 6), "severity"),
        (SAMPLE_PAYLOADS[7], _set("kind", "escalation_4"), "kind"),
        (SAMPLE_PAYLOADS[11], _set("confidence", 1.5), "confidence"),
        (SAMPLE_PAYLOADS[6], _set("steps", [{"step_id": "x"}]), "steps"),
    ],
    ids=[
        "missing-payment-id",
        "missing-invoice-id",
        "amount-not-a-number",
        "date-not-a-date",
        "invoice-id-not-a-uuid",
        "reminder-time-out-of-range",
        "missing-invoice-snapshot",
        "severity-above-5",
        "unknown-step-kind",
        "confidence-above-1",
        "invalid-step",
    ],
)
def test_payload_failing_validation_is_a_poison_message_that_names_the_field(
    payload: Payload, mutate: Any, field: str
) -> None:
    record = to_record(new_event(payload))
    document = json.loads(record.value)
    mutate(document)
    with pytest.raises(PoisonMessage) as caught:
        from_record(record.headers, json.dumps(document).encode())
    assert caught.value.reason.startswith(f"invalid {payload.event_type} event")
    assert field in caught.value.reason
    assert caught.value.event_type == payload.event_type
    assert caught.value.event_id == header_values(record)["ce_id"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ce_id", b"not-a-uuid"),
        ("ce_time", b"yesterday"),
        ("ce_organizationid", b"acme"),
    ],
)
def test_malformed_header_value_is_a_poison_message(name: str, value: bytes) -> None:
    record = payment_reported_record()
    with pytest.raises(PoisonMessage, match=r"invalid payment\.reported event"):
        from_record(with_header(record, name, value), record.value)


def test_from_record_refuses_a_naive_ce_time() -> None:
    # Event.new refuses a naive time; a record must not smuggle one in
    record = payment_reported_record()
    with pytest.raises(PoisonMessage):
        from_record(with_header(record, "ce_time", b"2026-03-02T10:15:00"), record.value)


def test_poison_message_says_its_reason() -> None:
    error = PoisonMessage("unknown event type 'x'", event_id="abc", event_type="x")
    assert str(error) == "unknown event type 'x'"
    assert error.reason == "unknown event type 'x'"
    assert (error.event_id, error.event_type) == ("abc", "x")


# --- forward compatibility -----------------------------------------------------------------


def test_unknown_payload_fields_are_ignored() -> None:
    event = new_event(SAMPLE_PAYLOADS[2])
    record = to_record(event)
    document = json.loads(record.value)
    document["added_in_a_later_version"] = {"anything": [1, 2, 3]}
    document["late_fee"] = "40.00"
    assert from_record(record.headers, json.dumps(document).encode()) == event


def test_unknown_fields_in_nested_snapshots_are_ignored() -> None:
    event = new_event(SAMPLE_PAYLOADS[0])
    record = to_record(event)
    document = json.loads(record.value)
    document["organization"]["vat_number"] = "FR40303265045"
    document["customer"]["phone"] = "+33 1 23 45 67 89"
    document["invoice"]["discount"] = "0.00"
    read = from_record(record.headers, json.dumps(document).encode())
    assert read == event
    assert not hasattr(read.data.invoice, "discount")


def test_optional_payload_fields_may_be_absent() -> None:
    event = new_event(SAMPLE_PAYLOADS[0])
    record = to_record(event)
    document = json.loads(record.value)
    del document["imported"]
    del document["invoice"]["sent_at"]
    del document["organization"]["timezone"]
    read = from_record(record.headers, json.dumps(document).encode())
    assert read.data.imported is False
    assert read.data.invoice.sent_at is None
    assert read.data.organization.timezone == "Europe/Paris"


# --- the registry --------------------------------------------------------------------------


def test_every_registered_event_type_goes_to_a_known_topic() -> None:
    assert Payload.registry
    for event_type, cls in Payload.registry.items():
        assert cls.topic in TOPICS, event_type
        assert cls.event_type == event_type


def test_every_library_payload_goes_to_the_topic_of_its_module() -> None:
    for cls in Payload.registry.values():
        module = sys.modules[cls.__module__]
        if module in LIBRARY_MODULES:
            assert cls.topic == module.TOPIC, cls.__name__


def test_the_five_topics_are_distinct() -> None:
    assert len(TOPICS) == len(set(TOPICS)) == 5
    assert set(TOPICS) == {module.TOPIC for module in LIBRARY_MODULES}
    assert events.TOPICS is TOPICS


def test_defining_a_payload_registers_it_and_makes_it_readable(
    restored_registry: dict[str, type[Payload]],
) -> None:
    class LateFeeCharged(
        InvoicePayload, event_type="test.unit.late_fee", topic=invoice_events.TOPIC
    ):
        fee: Decimal

    assert restored_registry["test.unit.late_fee"] is LateFeeCharged
    event = new_event(LateFeeCharged(invoice_id=INVOICE_ID, fee=Decimal("40.00")))
    record = to_record(event)
    assert from_record(record.headers, record.value) == event


def test_payload_base_class_without_event_type_is_not_registered(
    restored_registry: dict[str, type[Payload]],
) -> None:
    before = dict(restored_registry)

    class CommonFields(InvoicePayload):
        note: str = ""

    assert restored_registry == before
    assert CommonFields not in restored_registry.values()


def test_defining_two_payloads_with_the_same_event_type_is_refused(
    restored_registry: dict[str, type[Payload]],
) -> None:
    class First(InvoicePayload, event_type="test.unit.twice", topic=invoice_events.TOPIC):
        pass

    with pytest.raises(TypeError, match="defined twice"):

        class Second(InvoicePayload, event_type="test.unit.twice", topic=invoice_events.TOPIC):
            pass

    assert restored_registry["test.unit.twice"] is First


def test_redefining_a_library_event_type_is_refused_and_keeps_the_original(
    restored_registry: dict[str, type[Payload]],
) -> None:
    with pytest.raises(TypeError, match=r"'invoice\.sent'"):

        class FakeInvoiceSent(
            InvoicePayload, event_type="invoice.sent", topic=invoice_events.TOPIC
        ):
            pass

    assert restored_registry["invoice.sent"] is invoice_events.InvoiceSent


def test_payloads_are_frozen() -> None:
    payload = SAMPLE_PAYLOADS[12]
    assert isinstance(payload, InvoicePayload)
    with pytest.raises(ValueError, match="frozen"):
        payload.invoice_id = CUSTOMER_ID  # type: ignore[misc]
    assert payload.invoice_id == INVOICE_ID
