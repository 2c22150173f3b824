"""SQL of organizations: their API keys and their partner secret."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from relance.invoice_api.repository.rows import AnyRow
from relance.invoice_api.tables import (
    organizations,
)


async def insert_organization(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(organizations).values(**values))


async def organization_by_key(session: AsyncSession, key_sha256: str) -> AnyRow | None:
    result = await session.execute(
        select(organizations).where(organizations.c.api_key_sha256 == key_sha256)
    )
    return result.first()


async def organization_by_id(session: AsyncSession, org_id: UUID) -> AnyRow | None:
    return (
        await session.execute(select(organizations).where(organizations.c.id == org_id))
    ).first()


async def partner_secret(session: AsyncSession, org_id: UUID) -> str | None:
    secret: str | None = await session.scalar(
        select(organizations.c.partner_secret).where(organizations.c.id == org_id)
    )
    return secret


async def set_partner_secret(session: AsyncSession, org_id: UUID, secret: str) -> None:
    await session.execute(
        update(organizations).where(organizations.c.id == org_id).values(partner_secret=secret)
    )
