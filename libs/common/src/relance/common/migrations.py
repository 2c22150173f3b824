"""Per-service schema migrations with alembic.

Run by ``relance-<service> migrate`` (deployments) and by ``make dev``.

Each service keeps its revisions in ``relance/<service>/migrations``; its ``env.py`` calls
:func:`run_in_alembic_env`. The platform tables (outbox, inbox, dead letters) are created
by each service's first revision.
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(package: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Bring the service's database to ``revision``.

    Blocking (alembic runs its own event loop): call it from a thread in async code.
    """
    command.upgrade(alembic_config(package, database_url), revision)


def run_in_alembic_env(*metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    targets = list(metadata)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=targets, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=targets)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(online())
