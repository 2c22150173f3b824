"""The payment-matcher's configuration, from the environment (see relance.common.settings)."""

from pydantic import Field

from relance.common.settings import ServiceSettings


class PaymentMatcherSettings(ServiceSettings):
    port: int = Field(default=8003, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/relance_payment_matcher"
