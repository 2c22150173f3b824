"""The notifier's configuration, from the environment (see relance.common.settings)."""

from pydantic import Field

from relance.common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    port: int = Field(default=8002, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/relance_notifier"
