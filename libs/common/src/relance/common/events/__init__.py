"""Event envelope and payloads, one module per topic. Importing this package registers them all."""

from relance.common.events import (
    invoice_events,
    notification_events,
    organization_events,
    payment_events,
    reminder_events,
)
from relance.common.events.envelope import (
    Event,
    InvoicePayload,
    KafkaRecord,
    Payload,
    PoisonMessage,
    from_record,
    to_record,
)

TOPICS: tuple[str, ...] = (
    organization_events.TOPIC,
    invoice_events.TOPIC,
    reminder_events.TOPIC,
    notification_events.TOPIC,
    payment_events.TOPIC,
)

__all__ = [
    "TOPICS",
    "Event",
    "InvoicePayload",
    "KafkaRecord",
    "Payload",
    "PoisonMessage",
    "from_record",
    "to_record",
]
