"""Composition root of the invoice-api: what it reads, serves and runs. Nothing else."""

from relance.common.events import notification_events, payment_events, reminder_events
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.invoice_api.api import router
from relance.invoice_api.handlers import HANDLERS
from relance.invoice_api.settings import InvoiceApiSettings
from relance.invoice_api.workers import announce_calendar_changes

SPEC = ServiceSpec(
    name="invoice-api",
    package="relance.invoice_api",
    settings_cls=InvoiceApiSettings,
    description=(
        "HTTP API for frontends and partners: organizations, customers, invoices, payments, "
        "and the read model of reminders and activity."
    ),
    consumes=(reminder_events.TOPIC, notification_events.TOPIC, payment_events.TOPIC),
    handlers=HANDLERS,
    routers=(router,),
    workers={"calendar": announce_calendar_changes},
)


def main() -> int:
    return run_service(SPEC)
