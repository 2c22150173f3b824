"""The scheduler's configuration, from the environment (see relance.common.settings)."""

from pydantic import Field

from relance.common.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    port: int = Field(default=8001, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/relance_scheduler"
    # the loop that fires due steps; every replica may run it (claims use SKIP LOCKED)
    run_firing: bool = True
    # above about 5,000 PostgreSQL plans the claim as a full scan of the steps (BENCHMARKS.md)
    firing_batch_size: int = Field(default=1000, ge=1, le=5_000)
    # transactions claiming side by side during a burst (each on its own pooled connection)
    firing_claims_in_flight: int = Field(default=2, ge=1, le=8)
    # the longest the loop sleeps without a NOTIFY: the backstop for a lost notification
    firing_poll_seconds: float = Field(default=1.0, gt=0, le=60)
