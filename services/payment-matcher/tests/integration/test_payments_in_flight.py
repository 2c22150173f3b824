"""A payment is never counted twice: the balances invoice-api reports do not include this
service's matches until it has recorded them (its ``payment.reported`` naming the match),
so they are taken less those matches until then."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from relance.common.events.invoice_events import InvoiceUpdated

TOTAL = Decimal("1200.00")


async def test_a_stale_update_after_a_full_payment_does_not_let_a_second_transfer_pay_again(
    matcher,
):
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "1200.00", remittance_info="FA-2026-0077"))
    # invoice-api changed the invoice before it read the payment.matched: its balance is
    # still the whole total
    await matcher.invoice(number="FA-2026-0077", invoice_id=invoice, announced_as=InvoiceUpdated)

    answer = await matcher.transactions(
        matcher.credit("BNK-B", "1200.00", remittance_info="Facture FA-2026-0077")
    )

    assert (answer["matched"], answer["unmatched"]) == (0, 1)
    second = await matcher.transaction("BNK-B")
    assert (second["state"], second["allocations"]) == ("unmatched", [])
    (paid,) = await matcher.events("payment.matched")
    assert paid["bank_reference"] == "BNK-A"
    assert await matcher.balance(invoice) == 0


async def test_after_a_partial_payment_and_a_stale_update_a_second_transfer_is_only_suggested(
    matcher,
):
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "1000.00", remittance_info="FA-2026-0077"))
    await matcher.invoice(number="FA-2026-0077", invoice_id=invoice, announced_as=InvoiceUpdated)

    answer = await matcher.transactions(
        matcher.credit("BNK-B", "1200.00", remittance_info="FA-2026-0077")
    )

    # 200.00 is left to pay: 1,000.00 of the 1,200.00 would be an excess, for a person
    assert (answer["matched"], answer["suggested"]) == (0, 1)
    (suggestion,) = (await matcher.get("/v1/matches", state="suggested")).json()["items"]
    assert suggestion["amount"] == "1200.00"
    assert suggestion["allocations"] == [{"invoice_id": str(invoice), "amount": "200.00"}]
    assert [e["bank_reference"] for e in await matcher.events("payment.matched")] == ["BNK-A"]
    assert await matcher.balance(invoice) == 200


async def test_a_match_invoice_api_refused_stops_counting_once_it_says_the_invoice_is_paid(
    matcher,
):
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "1200.00", remittance_info="FA-2026-0077"))
    assert await matcher.count("payments_in_flight") == 1
    # a person reported the payment meanwhile: invoice-api refuses the match, and says the
    # invoice is paid by a payment that is not the match
    await matcher.paid_elsewhere(invoice, "1200.00", "0.00")

    assert await matcher.count("payments_in_flight") == 0
    assert await matcher.balance(invoice) == 0


async def test_once_invoice_api_has_recorded_the_match_its_balance_is_taken_as_it_says(matcher):
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "500.00", remittance_info="FA-2026-0077"))
    (paid,) = await matcher.events("payment.matched")
    await matcher.paid_elsewhere(invoice, "500.00", "700.00", match_id=paid["match_id"])
    assert await matcher.balance(invoice) == 700

    # the total raised to 1,500.00 afterwards: 1,000.00 is due, the payment included
    await matcher.invoice(
        number="FA-2026-0077",
        invoice_id=invoice,
        total="1500.00",
        balance="1000.00",
        announced_as=InvoiceUpdated,
    )

    assert await matcher.balance(invoice) == 1000
    answer = await matcher.transactions(
        matcher.credit("BNK-B", "1000.00", remittance_info="FA-2026-0077")
    )
    assert answer["matched"] == 1


async def test_an_acknowledgment_without_the_match_is_known_by_its_bank_reference(matcher):
    # an invoice-api from before match_id: its bank payment carries the transaction's reference
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "500.00", remittance_info="FA-2026-0077"))
    await matcher.paid_elsewhere(invoice, "500.00", "700.00", bank_reference="BNK-A")

    await matcher.invoice(
        number="FA-2026-0077",
        invoice_id=invoice,
        total="1500.00",
        balance="1000.00",
        announced_as=InvoiceUpdated,
    )

    assert await matcher.balance(invoice) == 1000


async def test_a_payment_a_person_reports_meanwhile_leaves_the_match_in_flight_counted(matcher):
    invoice = await matcher.invoice(number="FA-2026-0077", total="1000.00")
    await matcher.transactions(matcher.credit("BNK-A", "400.00", remittance_info="FA-2026-0077"))

    # a cheque of 300.00 recorded in invoice-api before it read the match: 700.00 left there
    await matcher.paid_elsewhere(invoice, "300.00", "700.00")

    assert await matcher.balance(invoice) == 300
    answer = await matcher.transactions(
        matcher.credit("BNK-B", "700.00", remittance_info="FA-2026-0077")
    )
    assert (answer["matched"], answer["suggested"]) == (0, 1)


@pytest.mark.parametrize("seed", range(6))
async def test_imports_and_invoice_events_in_any_order_never_pay_more_than_the_total(matcher, seed):
    # a few random interleavings through the real service (the rules themselves are checked
    # by the hundreds in tests/unit/test_payments_in_flight_properties.py): invoice-api is
    # played by its behaviour, reading the payment.matched the service published
    chance = random.Random(seed)
    invoice = await matcher.invoice(number="FA-2026-0077")
    paid = Decimal(0)  # in invoice-api
    to_invoice_api: list[dict[str, Any]] = []
    seen: set[str] = set()
    # invoice-api's events, each with its balance then: an invoice.updated, or the
    # payment.reported of a match (with the amount it recorded)
    to_matcher: list[tuple[Decimal, Decimal, str | None]] = []
    for step in range(16):
        action = chance.choice(["import", "record", "update", "read", "read"])
        if action == "import":
            amount = chance.choice(["1200.00", "600.00", "1250.00", "300.00"])
            await matcher.transactions(
                matcher.credit(f"BNK-{step}", amount, remittance_info="Facture FA-2026-0077")
            )
            for event in await matcher.events("payment.matched"):
                if event["match_id"] not in seen:
                    seen.add(event["match_id"])
                    to_invoice_api.append(event)
        elif action == "record" and to_invoice_api:
            event = to_invoice_api.pop(0)
            if paid < TOTAL:
                recorded = min(Decimal(event["amount"]), TOTAL - paid)
                paid += recorded
                to_matcher.append((TOTAL - paid, recorded, event["match_id"]))
        elif action == "update":
            to_matcher.append((TOTAL - paid, Decimal(0), None))
        elif action == "read" and to_matcher:
            balance, recorded, match_id = to_matcher.pop(0)
            if match_id is None:
                await matcher.invoice(
                    number="FA-2026-0077",
                    invoice_id=invoice,
                    balance=str(balance),
                    announced_as=InvoiceUpdated,
                )
            else:
                await matcher.paid_elsewhere(
                    invoice, str(recorded), str(balance), total=str(TOTAL), match_id=match_id
                )

    matched = [Decimal(e["amount"]) for e in await matcher.events("payment.matched")]
    assert sum(matched, Decimal(0)) <= TOTAL
