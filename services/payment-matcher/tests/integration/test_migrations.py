"""Upgrading a database that already holds transactions: what the new revisions compute for
the rows written before them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg

from relance.common.db import asyncpg_dsn
from relance.common.migrations import upgrade

PACKAGE = "relance.payment_matcher"
NOW = datetime(2026, 4, 15, 8, 0, tzinfo=UTC)


async def test_a_credit_left_unmatched_before_0003_finds_its_invoice_after_the_upgrade(
    postgres, serve
):
    name = f"test_{uuid.uuid4().hex[:16]}"
    server = await asyncpg.connect(postgres.dsn())
    await server.execute(f'CREATE DATABASE "{name}"')
    await server.close()
    url = postgres.url(name)
    await asyncio.to_thread(upgrade, PACKAGE, url, "0003")
    org = uuid.uuid4()
    database = await asyncpg.connect(asyncpg_dsn(url))
    try:
        # as 0003 left it: unmatched, and no lookup keys
        await database.execute(
            "INSERT INTO bank_transactions (organization_id, bank_reference, booked_on, amount,"
            " currency, counterparty_name, remittance_info, state, imported_at)"
            " VALUES ($1, 'BNK-OLD', $2, 1200, 'EUR', 'BOULANGERIE MARTIN',"
            " 'VIR Facture FA-2026-0077', 'unmatched', $3)",
            org,
            NOW.date(),
            NOW,
        )
        await asyncio.to_thread(upgrade, PACKAGE, url, "head")
        keys = await database.fetchval(
            "SELECT lookup_keys FROM bank_transactions WHERE bank_reference = 'BNK-OLD'"
        )
    finally:
        await database.close()
    assert "num:2026-77" in keys

    async with serve(url) as matcher:
        await matcher.new_organization(org)
        invoice = await matcher.invoice(number="FA-2026-0077")

        shown = await matcher.transaction("BNK-OLD")
        assert shown["state"] == "matched"
        assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "1200.00"}]
