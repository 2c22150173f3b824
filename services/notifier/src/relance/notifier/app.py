"""Composition root of the notifier: what it reads, what it serves, what it runs. Nothing else."""

from relance.common.events import (
    invoice_events,
    organization_events,
    payment_events,
    reminder_events,
)
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.notifier.email.api import router as templates_router
from relance.notifier.email.workers import send_emails
from relance.notifier.handlers import HANDLERS
from relance.notifier.settings import NotifierSettings
from relance.notifier.webhooks.api import router as webhooks_router
from relance.notifier.webhooks.workers import deliver_webhooks

SPEC = ServiceSpec(
    name="notifier",
    package="relance.notifier",
    settings_cls=NotifierSettings,
    description="Renders and sends reminder emails over SMTP, and delivers partner webhooks.",
    consumes=(
        organization_events.TOPIC,
        invoice_events.TOPIC,
        reminder_events.TOPIC,
        payment_events.TOPIC,
    ),
    handlers=HANDLERS,
    routers=(webhooks_router, templates_router),
    workers={"sending": send_emails, "webhooks": deliver_webhooks},
)


def main() -> int:
    return run_service(SPEC)
