"""Composition root of the invoice-api: what it reads, serves and runs. Nothing else."""

from relance.common.events import notification_events, payment_events, reminder_events
from relance.common.service import Runtime, ServiceSpec
from relance.common.service import main as run_service
from relance.invoice_api.api import router
from relance.invoice_api.calendar_changes import CalendarChanges
from relance.invoice_api.handlers import HANDLERS
from relance.invoice_api.settings import InvoiceApiSettings


async def announce_calendar_changes(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, InvoiceApiSettings)
    if not settings.run_calendar:
        return
    await CalendarChanges(
        runtime.database,
        runtime.clock,
        batch_size=settings.calendar_batch_size,
        poll_seconds=settings.calendar_poll_seconds,
    ).run()


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
