"""Every SQL statement of invoice-api, and only here, one module per aggregate; each
statement filters by organization (but the calendar loop's, which works for all of them).
The names are re-exported here: callers write ``repository.get_invoice``."""

from __future__ import annotations

from relance.invoice_api.repository.activity import add_activity, list_activity
from relance.invoice_api.repository.calendar import (
    claim_status_changes,
    next_status_change_at,
    set_status_tracking,
)
from relance.invoice_api.repository.customers import (
    get_customer,
    insert_customer,
    list_customers,
    update_customer,
)
from relance.invoice_api.repository.invoices import (
    InvoiceFilters,
    get_invoice,
    invoice_exists,
    invoice_ids_named,
    list_invoices,
    open_sent_invoice_ids,
    update_invoice,
)
from relance.invoice_api.repository.new_invoice import (
    create_invoice,
    invoice_refusal,
)
from relance.invoice_api.repository.organizations import (
    insert_organization,
    organization_by_id,
    organization_by_key,
    partner_secret,
    set_partner_secret,
)
from relance.invoice_api.repository.partners import claim_partner_event, partner_event
from relance.invoice_api.repository.payments import (
    add_to_paid,
    insert_payment,
    match_already_applied,
)
from relance.invoice_api.repository.reminders import (
    list_steps,
    next_steps,
    record_step_outcome,
    replace_steps,
    step_outcomes_of,
)
from relance.invoice_api.repository.reports import aging
from relance.invoice_api.repository.rows import AnyRow, external_id_taken

__all__ = [
    "AnyRow",
    "InvoiceFilters",
    "add_activity",
    "add_to_paid",
    "aging",
    "claim_partner_event",
    "claim_status_changes",
    "create_invoice",
    "external_id_taken",
    "get_customer",
    "get_invoice",
    "insert_customer",
    "insert_organization",
    "insert_payment",
    "invoice_exists",
    "invoice_ids_named",
    "invoice_refusal",
    "list_activity",
    "list_customers",
    "list_invoices",
    "list_steps",
    "match_already_applied",
    "next_status_change_at",
    "next_steps",
    "open_sent_invoice_ids",
    "organization_by_id",
    "organization_by_key",
    "partner_event",
    "partner_secret",
    "record_step_outcome",
    "replace_steps",
    "set_partner_secret",
    "set_status_tracking",
    "step_outcomes_of",
    "update_customer",
    "update_invoice",
]
