"""The scheduler's configuration, from the environment (see relance.common.settings)."""

from relance.common.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    port: int = 8001
