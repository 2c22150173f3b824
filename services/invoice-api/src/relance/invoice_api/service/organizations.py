"""Organizations: creating one with its API key, and finding the one a key belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.clock import Clock
from relance.common.events import Event
from relance.common.events.organization_events import OrganizationSaved
from relance.common.outbox import add_events
from relance.common.tenancy import api_key_sha256, new_api_key
from relance.invoice_api import repository as repo
from relance.invoice_api.service.snapshots import organization_snapshot
from relance.invoice_api.service.tenant import SOURCE, Tenant


@dataclass(frozen=True, slots=True)
class NewOrganization:
    name: str
    country: str
    timezone: str
    locale: str
    reminder_time: time
    sender_email: str | None


async def create_organization(
    session: AsyncSession, clock: Clock, data: NewOrganization
) -> tuple[dict[str, Any], str]:
    """The organization's stored values, and its API key (only its SHA-256 is kept)."""
    api_key = new_api_key()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": data.name,
        "country": data.country,
        "timezone": data.timezone,
        "locale": data.locale,
        "reminder_time": data.reminder_time,
        "sender_email": data.sender_email,
        "api_key_sha256": api_key_sha256(api_key),
        "created_at": clock.now(),
    }
    await repo.insert_organization(session, values)
    snapshot = organization_snapshot(values)
    saved = OrganizationSaved(
        organization_id=values["id"], organization=snapshot, api_key_sha256=values["api_key_sha256"]
    )
    event = Event.new(saved, source=SOURCE, organization_id=values["id"], time=clock.now())
    await add_events(session, [event])
    return values, api_key


async def tenant_of_key(session: AsyncSession, clock: Clock, key_sha256: str) -> Tenant | None:
    """The organization whose API key has this SHA-256, if any."""
    org = await repo.organization_by_key(session, key_sha256)
    return None if org is None else Tenant(org=org, clock=clock)


async def tenant_of_invoice(
    session: AsyncSession, clock: Clock, org_id: UUID, invoice_id: UUID
) -> Tenant | None:
    """The organization, if it exists and has this invoice (another service's event may
    name an invoice this organization does not have)."""
    org = await repo.organization_by_id(session, org_id)
    if org is None or not await repo.invoice_exists(session, org.id, invoice_id):
        return None
    return Tenant(org=org, clock=clock)
