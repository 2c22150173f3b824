"""Reports over an organization's invoices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Unprocessable
from relance.common.money import is_currency
from relance.invoice_api import repository as repo
from relance.invoice_api.service.tenant import Tenant


@dataclass(frozen=True, slots=True)
class Aging:
    """Open sent invoices in one currency by lateness, as of the organization's today:
    bucket → (invoices, customers, balance)."""

    currency: str
    as_of: date
    buckets: dict[str, tuple[int, int, Decimal]]


async def aging(session: AsyncSession, tenant: Tenant, currency: str) -> Aging:
    if not is_currency(currency):
        raise Unprocessable("currency", f"{currency!r} is not an ISO 4217 currency code")
    today = tenant.today()
    return Aging(currency, today, await repo.aging(session, tenant.id, today, currency))
