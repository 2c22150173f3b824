"""The invoice-api's configuration, from the environment (see relance.common.settings)."""

from pydantic import Field

from relance.common.settings import ServiceSettings


class InvoiceApiSettings(ServiceSettings):
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/relance_invoice_api"
    # the loop announcing status changes the calendar makes; every replica may run it
    # (claims use SKIP LOCKED)
    run_calendar: bool = True
    calendar_batch_size: int = Field(default=500, ge=1, le=5_000)
    # the longest the loop sleeps: how late a change an operation brought sooner may go out
    calendar_poll_seconds: float = Field(default=10.0, gt=0, le=300)
