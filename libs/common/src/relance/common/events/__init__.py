"""Event envelope and payloads, one module per topic. Importing this package registers them all."""

from relance.common.events import (
    invoice_events,
    notification_events,
    payment_events,
    reminder_events,
)
from relance.common.events.envelope import (
    Event,
    KafkaRecord,
    Payload,
    PoisonMessage,
    from_record,
    to_record,
)

TOPICS: tuple[str, ...] = (
    invoice_events.TOPIC,
    reminder_events.TOPIC,
    notification_events.TOPIC,
    payment_events.TOPIC,
)

__all__ = [
    "TOPICS",
    "Event",
    "KafkaRecord",
    "Payload",
    "PoisonMessage",
    "from_record",
    "to_record",
]
