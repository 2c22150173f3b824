"""The payment-matcher's configuration, from the environment (see relance.common.settings)."""

from relance.common.settings import ServiceSettings


class PaymentMatcherSettings(ServiceSettings):
    port: int = 8003
