"""The organizations every service but invoice-api knows: kept from ``organization.saved``.

invoice-api owns organizations and publishes each one's state (with its API key hashed)
on ``organization-events``. The other services keep this projection so that the same API
key works on every service (docs/api.md) and so that they know each tenant's rules without
calling back. A service adds :data:`HANDLERS` to its own and creates the table in one of
its migrations with :func:`create_tenants_table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header
from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.deps import SessionDep
from relance.common.events import Event
from relance.common.events.organization_events import OrganizationSaved
from relance.common.kafka import Handler
from relance.common.tenancy import api_key_sha256, bearer_key, unknown_key

tenants_metadata = MetaData()

tenants = Table(
    "tenants",
    tenants_metadata,
    Column("id", Uuid, primary_key=True),
    Column("api_key_sha256", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("reminder_time", Text, nullable=False),
    Column("sender_email", Text),
    # the time of the event that last changed it: an older event never overwrites a newer
    Column("saved_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    name: str
    country: str
    timezone: str
    locale: str
    reminder_time: time
    sender_email: str | None


def create_tenants_table(connection: Connection) -> None:
    tenants_metadata.create_all(connection)


def drop_tenants_table(connection: Connection) -> None:
    tenants_metadata.drop_all(connection)


async def save_tenant(session: AsyncSession, event: Event[OrganizationSaved]) -> None:
    org = event.data.organization
    values: dict[str, Any] = {
        "id": event.data.organization_id,
        "api_key_sha256": event.data.api_key_sha256,
        "name": org.name,
        "country": org.country,
        "timezone": org.timezone,
        "locale": org.locale,
        "reminder_time": org.reminder_time,
        "sender_email": org.sender_email,
        "saved_at": event.time,
    }
    statement = insert(tenants).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[tenants.c.id],
            set_={name: statement.excluded[name] for name in values if name != "id"},
            where=tenants.c.saved_at <= statement.excluded.saved_at,
        )
    )


HANDLERS: dict[str, Handler] = {OrganizationSaved.event_type: save_tenant}


async def tenant_by_key(session: AsyncSession, authorization: str | None) -> Tenant:
    """The organization whose API key is in the ``Authorization`` header; 401 otherwise."""
    row = (
        await session.execute(
            select(tenants).where(
                tenants.c.api_key_sha256 == api_key_sha256(bearer_key(authorization))
            )
        )
    ).first()
    if row is None:
        raise unknown_key()
    return Tenant(
        id=row.id,
        name=row.name,
        country=row.country,
        timezone=row.timezone,
        locale=row.locale,
        reminder_time=time.fromisoformat(row.reminder_time),
        sender_email=row.sender_email,
    )


AuthorizationHeader = Annotated[str | None, Header()]


async def request_tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    """The organization of the request's API key; 401 when it has none or an unknown one."""
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(request_tenant)]
"""The caller's organization, for the routes of every service but invoice-api (which owns
the organizations and keeps its own, richer, tenant)."""
