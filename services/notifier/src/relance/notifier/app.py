"""Composition root of the notifier: what it reads, what it serves. Nothing else."""

from relance.common.events import invoice_events, payment_events, reminder_events
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.notifier.settings import NotifierSettings

SPEC = ServiceSpec(
    name="notifier",
    package="relance.notifier",
    settings_cls=NotifierSettings,
    description="Renders and sends reminder emails over SMTP, and delivers partner webhooks.",
    consumes=(invoice_events.TOPIC, reminder_events.TOPIC, payment_events.TOPIC),
)


def main() -> int:
    return run_service(SPEC)
