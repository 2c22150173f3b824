"""Organizations, customers and invoices as events carry them."""

from __future__ import annotations

from typing import Any

from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot, OrganizationSnapshot
from relance.common.money import quantize


def organization_snapshot(org: Any) -> OrganizationSnapshot:
    def get(key: str) -> Any:
        return org[key] if isinstance(org, dict) else getattr(org, key)

    return OrganizationSnapshot(
        id=get("id"),
        name=get("name"),
        country=get("country"),
        timezone=get("timezone"),
        locale=get("locale"),
        reminder_time=get("reminder_time").strftime("%H:%M"),
        sender_email=get("sender_email"),
    )


def customer_snapshot(row: Any) -> CustomerSnapshot:
    return CustomerSnapshot(
        id=row.id,
        name=row.name,
        email=row.email,
        locale=row.locale,
        ibans=tuple(row.ibans or ()),
        external_id=row.external_id,
    )


def invoice_snapshot(row: Any) -> InvoiceSnapshot:
    return InvoiceSnapshot(
        number=row.number,
        currency=row.currency,
        total=quantize(row.total, row.currency),
        paid=quantize(row.paid, row.currency),
        balance=quantize(row.total - row.paid, row.currency),
        issue_date=row.issue_date,
        due_date=row.due_date,
        sent_at=row.sent_at,
        payment_reference=row.payment_reference,
        external_id=row.external_id,
        invoice_text=row.invoice_text,
    )
