"""The notifier's configuration, from the environment (see relance.common.settings)."""

from pydantic import Field

from relance.common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    port: int = Field(default=8002, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/relance_notifier"
    # the loop that sends due emails; every replica may run it (claims use SKIP LOCKED)
    run_sending: bool = True
    sending_batch_size: int = Field(default=50, ge=1, le=1000)
    sending_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # SMTP connections per replica; a claimed batch is sent over all of them at once
    smtp_connections: int = Field(default=4, ge=1, le=64)
    # temporary SMTP failures are retried with doubling delays from this one, this many times
    send_retry_seconds: float = Field(default=30.0, gt=0)
    send_max_attempts: int = Field(default=8, ge=1, le=30)
    # an email whose invoice the notifier does not know yet is retried after 1 s, doubling
    # up to SEND_RETRY_SECONDS, without using attempts; failed if still unknown this long
    send_invoice_wait_seconds: float = Field(default=86400.0, ge=60)
    # the sender when the organization has none
    mail_from: str = "Relance <no-reply@relance.localhost>"
    run_webhooks: bool = True
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    # at most this many of those requests to one endpoint; the rest of its deliveries wait
    webhook_per_endpoint_concurrency: int = Field(default=4, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # comma-separated host names (a name allows its subdomains too); empty allows any host
    webhook_allowed_hosts: str = ""

    @property
    def allowed_webhook_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip())
