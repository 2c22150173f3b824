"""The notifier's configuration, from the environment (see relance.common.settings)."""

from relance.common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    port: int = 8002
