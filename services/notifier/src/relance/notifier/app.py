"""Composition root of the notifier: what it reads, what it serves, what it runs. Nothing else."""

from relance.common.events import (
    invoice_events,
    organization_events,
    payment_events,
    reminder_events,
)
from relance.common.service import Runtime, ServiceSpec
from relance.common.service import main as run_service
from relance.notifier.api import router
from relance.notifier.handlers import HANDLERS
from relance.notifier.mail import SmtpConnection
from relance.notifier.sending import EmailSending
from relance.notifier.settings import NotifierSettings
from relance.notifier.templates_api import router as templates_router
from relance.notifier.webhooks import WebhookDelivery


async def send_emails(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, NotifierSettings)
    if not settings.run_sending:
        return
    smtp = [
        SmtpConnection(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
        for _ in range(settings.smtp_connections)
    ]
    await EmailSending(
        runtime.database,
        runtime.clock,
        smtp,
        mail_from=settings.mail_from,
        batch_size=settings.sending_batch_size,
        poll_seconds=settings.sending_poll_seconds,
        retry_seconds=settings.send_retry_seconds,
        max_attempts=settings.send_max_attempts,
        invoice_wait_seconds=settings.send_invoice_wait_seconds,
        # the lease covers a batch sent one email after the other (a connection that fails
        # leaves the others more to send), as with a single connection
        lease_seconds=settings.smtp_timeout_seconds * (settings.sending_batch_size + 1),
    ).run()


async def deliver_webhooks(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, NotifierSettings)
    if not settings.run_webhooks:
        return
    await WebhookDelivery(
        runtime.database,
        runtime.clock,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_per_endpoint_concurrency,
        timeout_seconds=settings.webhook_timeout_seconds,
    ).run()


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
    routers=(router, templates_router),
    workers={"sending": send_emails, "webhooks": deliver_webhooks},
)


def main() -> int:
    return run_service(SPEC)
