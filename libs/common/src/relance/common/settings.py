"""Configuration from the environment, one base for the four services.

Each service subclasses :class:`ServiceSettings` to set its own default port and add what
only it needs. Variable names are those of docs/architecture.md (Configuration).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relance.common.db import asyncpg_url


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/relance",
        description="The service's own database (SQLAlchemy URL; postgresql:// is accepted).",
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    admin_token: SecretStr | None = Field(
        default=None, description="Token that allows creating organizations (X-Admin-Token)."
    )
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=2000, ge=1)
    run_consumers: bool = Field(
        default=True, description="Read the service's topics (off for an HTTP-only replica)."
    )

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        return asyncpg_url(url)
