"""A 2xx means the change is saved: an import whose transaction fails at COMMIT answers an
error, records no transaction and announces no payment, so the bank file can be sent again."""

from __future__ import annotations

from decimal import Decimal

from relance.devstack.testing import fail_at_commit


async def test_an_import_whose_commit_fails_is_a_503_and_leaves_nothing(matcher):
    invoice_id = await matcher.invoice(number="FA-2026-0012")
    await fail_at_commit(matcher.database.url, "bank_transactions", sqlstate="40001")

    answer = await matcher.post(
        "/v1/bank-transactions",
        {"items": [matcher.credit("BANK-1", "1200.00", remittance_info="FA-2026-0012")]},
    )

    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert await matcher.count("bank_transactions") == 0
    assert await matcher.count("matches") == 0
    assert await matcher.balance(invoice_id) == Decimal("1200.00")
    assert await matcher.events("payment.matched") == []
    assert (await matcher.get("/v1/bank-transactions/BANK-1")).status_code == 404
