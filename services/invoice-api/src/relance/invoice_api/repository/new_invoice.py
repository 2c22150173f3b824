"""Creating an invoice on the driver's connection (``service.invoices.create_invoice``): the
hot path of ``POST /v1/invoices``, one statement and one round trip."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from relance.common.outbox import CHANNEL

# One statement, hence one round trip and one transaction: the checks (the organization has
# the customer; the number and the external id are free in it) and, when they pass, the
# invoice (its updated_at is its created_at), its activity and, for an invoice sent
# elsewhere, its second activity row, its event in the outbox and the relay's wake-up at
# commit, as add_events does. The event's customer is the row the statement reads. Data-
# modifying CTEs run once and to completion whether or not the query reads them; the
# activity's foreign key is checked at the end of the statement, when the invoice is there.
_CREATE_INVOICE = """
WITH customer AS (
    SELECT name, email, locale, ibans, external_id FROM customers
    WHERE organization_id = $2 AND id = $3
),
refusal AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM customer) THEN 'customer_id'
        WHEN EXISTS (SELECT FROM invoices WHERE organization_id = $2 AND number = $4)
            THEN 'number'
        WHEN $11::text IS NOT NULL
             AND EXISTS (SELECT FROM invoices WHERE organization_id = $2 AND external_id = $11)
            THEN 'external_id'
    END AS field
),
invoice AS (
    INSERT INTO invoices (id, organization_id, customer_id, number, issue_date, due_date,
                          currency, total, invoice_text, payment_reference, external_id,
                          sent_at, imported, created_at, updated_at,
                          status_announced, next_status_change_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $24, $25
    FROM refusal WHERE field IS NULL
    RETURNING id
),
activity_rows AS (
    INSERT INTO activity (organization_id, invoice_id, at, kind, detail)
    SELECT $2, invoice.id, a.at, a.kind, a.detail
    FROM invoice, (VALUES (1, $14::timestamptz, 'invoice.created', '{}'::jsonb),
                          (2, $15, 'invoice.imported', $16::jsonb)) AS a (n, at, kind, detail)
    WHERE a.n = 1 OR $12::timestamptz IS NOT NULL
    ORDER BY a.n
),
event AS (
    INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
    SELECT $17, $18, $19, $20,
           convert_to((convert_from($21, 'UTF8')::jsonb || jsonb_build_object(
               'customer', jsonb_build_object(
                   'id', $3::uuid, 'name', c.name, 'email', c.email, 'locale', c.locale,
                   'ibans', c.ibans, 'external_id', c.external_id)))::text, 'UTF8'),
           $22::jsonb
    FROM invoice, customer c
    WHERE $17::uuid IS NOT NULL
    RETURNING 1
)
SELECT refusal.field AS refused, customer.name AS customer_name,
       (SELECT pg_notify($23, '') FROM event) AS notified
FROM refusal LEFT JOIN customer ON true
"""


NEW_INVOICE_COLUMNS = (  # $1 to $14
    "id",
    "organization_id",
    "customer_id",
    "number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "invoice_text",
    "payment_reference",
    "external_id",
    "sent_at",
    "imported",
    "created_at",
)


async def create_invoice(
    connection: asyncpg.Connection,
    values: Mapping[str, Any],
    imported: tuple[datetime, dict[str, Any], Mapping[str, Any]] | None = None,
) -> asyncpg.Record:
    """Write a new invoice (``values`` has the keys of ``NEW_INVOICE_COLUMNS``, then
    ``status_announced`` and ``next_status_change_at``: see ``status.tracking``) with its
    ``invoice.created`` activity, unless a check refuses it; with ``imported`` (the time and
    detail of its ``invoice.imported`` activity, and the outbox row of its event, whose
    customer the statement fills in), those too. Returns ``refused`` (None, ``customer_id``,
    ``number`` or ``external_id``: the first check that failed) and ``customer_name``.
    Raises asyncpg's ``UniqueViolationError`` when a concurrent request took the number or
    the external id after the checks."""
    at, detail, event = imported or (None, None, None)
    row: asyncpg.Record = await connection.fetchrow(
        _CREATE_INVOICE,
        *[values[column] for column in NEW_INVOICE_COLUMNS],
        at,
        None if detail is None else json.dumps(detail),
        *(
            (None,) * 6
            if event is None
            else (
                event["event_id"],
                event["event_type"],
                event["topic"],
                event["key"],
                event["value"],
                json.dumps(event["headers"]),
            )
        ),
        CHANNEL,
        values["status_announced"],
        values["next_status_change_at"],
    )
    return row


_INVOICE_CHECKS = """
SELECT EXISTS (SELECT FROM customers c WHERE c.organization_id = $1 AND c.id = $2)
           AS customer_found,
       EXISTS (SELECT FROM invoices i WHERE i.organization_id = $1 AND i.number = $3)
           AS number_taken,
       $4::text IS NOT NULL
       AND EXISTS (SELECT FROM invoices i WHERE i.organization_id = $1 AND i.external_id = $4)
           AS external_id_taken
"""


async def invoice_refusal(
    connection: asyncpg.Connection,
    org_id: UUID,
    customer_id: UUID,
    number: str,
    external_id: str | None,
) -> str | None:
    """The checks of ``create_invoice`` alone: the first that fails, or None."""
    row = await connection.fetchrow(_INVOICE_CHECKS, org_id, customer_id, number, external_id)
    if not row["customer_found"]:
        return "customer_id"
    if row["number_taken"]:
        return "number"
    if row["external_id_taken"]:
        return "external_id"
    return None
