"""Customers: creating, changing (which re-announces their open invoices) and reading them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Conflict, NotFound, Unprocessable
from relance.common.paging import encode_cursor
from relance.invoice_api import repository as repo
from relance.invoice_api.repository import AnyRow
from relance.invoice_api.service.invoices import announce_updates
from relance.invoice_api.service.tenant import Tenant
from relance.invoice_api.tables import customers


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    email: str | None = None
    locale: str | None = None
    ibans: Sequence[str] = ()
    external_id: str | None = None


async def create_customer(session: AsyncSession, tenant: Tenant, data: NewCustomer) -> AnyRow:
    if data.external_id and await repo.external_id_taken(
        session, customers, tenant.id, data.external_id
    ):
        raise Conflict(f"a customer with external_id {data.external_id!r} exists")
    customer_id = uuid.uuid4()
    await repo.insert_customer(
        session,
        {
            "id": customer_id,
            "organization_id": tenant.id,
            "name": data.name,
            "email": data.email,
            "locale": data.locale,
            "ibans": list(dict.fromkeys(data.ibans)),
            "external_id": data.external_id,
            "created_at": tenant.now(),
        },
    )
    return await get_customer(session, tenant, customer_id)


async def update_customer(
    session: AsyncSession, tenant: Tenant, customer_id: UUID, changes: Mapping[str, Any]
) -> AnyRow:
    """Change the fields in ``changes`` (those the client gave; None removes a value); the
    customer's open sent invoices are re-announced so reminders use the change."""
    await get_customer(session, tenant, customer_id)
    changes = dict(changes)
    if changes.get("name", "") is None:
        raise Unprocessable("name", "name cannot be removed")
    if changes.get("external_id") and await repo.external_id_taken(
        session, customers, tenant.id, changes["external_id"], except_id=customer_id
    ):
        raise Conflict(f"a customer with external_id {changes['external_id']!r} exists")
    if "email" in changes and changes["email"] is not None:
        changes["email"] = str(changes["email"])
    if "ibans" in changes:  # null removes them all
        changes["ibans"] = list(dict.fromkeys(changes["ibans"] or []))
    if changes:
        await repo.update_customer(session, tenant.id, customer_id, changes)
        open_ids = await repo.open_sent_invoice_ids(session, tenant.id, customer_id)
        await announce_updates(session, tenant, open_ids)
    return await get_customer(session, tenant, customer_id)


async def get_customer(session: AsyncSession, tenant: Tenant, customer_id: UUID) -> AnyRow:
    row = await repo.get_customer(session, tenant.id, customer_id)
    if row is None:
        raise NotFound("customer")
    return row


@dataclass(frozen=True, slots=True)
class CustomerPage:
    items: Sequence[AnyRow]
    next_cursor: str | None


async def list_customers(
    session: AsyncSession, tenant: Tenant, limit: int, cursor: str | None
) -> CustomerPage:
    """The organization's customers, newest first, ``limit`` at a time."""
    rows = await repo.list_customers(session, tenant.id, limit, cursor)
    more = len(rows) > limit
    return CustomerPage(
        items=rows[:limit],
        next_cursor=encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if more else None,
    )
