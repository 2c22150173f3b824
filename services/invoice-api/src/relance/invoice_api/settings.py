"""The invoice-api's configuration, from the environment (see relance.common.settings)."""

from relance.common.settings import ServiceSettings


class InvoiceApiSettings(ServiceSettings):
    port: int = 8000
