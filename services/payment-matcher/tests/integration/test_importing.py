"""Bank transactions in (JSON feed): each credit that surely pays an invoice records the
payment by itself, duplicates change nothing, debits are kept and never matched, and bad
input is a 422 that imports nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from relance.common.events.invoice_events import InvoiceUpdated
from relance.devstack.testing import fail_at_commit

REFERENCE = "RF18539007547034"


async def test_a_credit_with_the_invoices_reference_pays_it_by_itself(matcher):
    invoice = await matcher.invoice(payment_reference="RF18 5390 0754 7034")

    answer = await matcher.transactions(
        matcher.credit("BNK-1", "1200.00", creditor_reference=REFERENCE)
    )

    assert answer == {
        "imported": 1,
        "duplicates": 0,
        "matched": 1,
        "suggested": 0,
        "unmatched": 0,
        "debits": 0,
    }
    shown = await matcher.transaction("BNK-1")
    assert shown["state"] == "matched"
    assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "1200.00"}]
    assert shown["excess"] == "0.00"
    (event,) = await matcher.events("payment.matched")
    assert event["invoice_id"] == str(invoice)
    assert (event["amount"], event["bank_reference"]) == ("1200.00", "BNK-1")
    assert event["confirmed_by_person"] is False
    assert await matcher.balance(invoice) == 0


async def test_the_invoice_number_in_the_text_pays_it_even_written_otherwise(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012")

    await matcher.transactions(
        matcher.credit("BNK-1", "1200.00", remittance_info="VIR fact. 2026/12")
    )

    assert (await matcher.transaction("BNK-1"))["allocations"][0]["invoice_id"] == str(invoice)


async def test_a_partial_payment_is_recorded_and_leaves_the_rest_open(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012")

    await matcher.transactions(
        matcher.credit("BNK-1", "500.00", remittance_info="FA-2026-0012 acompte")
    )

    (event,) = await matcher.events("payment.matched")
    assert event["amount"] == "500.00"
    assert await matcher.balance(invoice) == 700


async def test_one_transfer_naming_two_invoices_pays_both(matcher):
    customer = uuid.uuid4()
    first = await matcher.invoice(number="FA-2026-0012", total="100.00", customer_id=customer)
    second = await matcher.invoice(number="FA-2026-0013", total="250.00", customer_id=customer)

    await matcher.transactions(
        matcher.credit("BNK-1", "350.00", remittance_info="FA-2026-0012 FA-2026-0013")
    )

    paid = {
        a["invoice_id"]: a["amount"] for a in (await matcher.transaction("BNK-1"))["allocations"]
    }
    assert paid == {str(first): "100.00", str(second): "250.00"}
    assert len(await matcher.events("payment.matched")) == 2


async def test_a_little_more_than_the_balance_is_kept_as_the_customers_credit(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012", total="100.00")

    await matcher.transactions(matcher.credit("BNK-1", "104.00", remittance_info="FA-2026-0012"))

    shown = await matcher.transaction("BNK-1")
    assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "100.00"}]
    assert shown["excess"] == "4.00"
    assert shown["customer_id"] is not None


async def test_much_more_than_the_balance_is_only_suggested(matcher):
    await matcher.invoice(number="FA-2026-0012", total="100.00")

    await matcher.transactions(matcher.credit("BNK-1", "130.00", remittance_info="FA-2026-0012"))

    shown = await matcher.transaction("BNK-1")
    assert (shown["state"], shown["allocations"], shown["excess"]) == ("suggested", [], "0.00")
    assert len(shown["suggestions"]) >= 1


async def test_importing_the_same_transactions_again_pays_nothing_twice(matcher):
    await matcher.invoice(number="FA-2026-0012")
    items = [
        matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012"),
        matcher.credit("BNK-2", "9.99"),
    ]
    await matcher.transactions(*items)

    again = await matcher.transactions(*items)

    assert (again["imported"], again["duplicates"], again["matched"]) == (0, 2, 0)
    assert len(await matcher.events("payment.matched")) == 1
    assert await matcher.count("bank_transactions") == 2


OUTCOMES = ("matched", "suggested", "unmatched", "debit", "duplicate")


async def counted(matcher) -> dict[str, float]:
    """``relance_bank_transactions_total`` by outcome."""
    return {o: await matcher.metric("relance_bank_transactions_total", outcome=o) for o in OUTCOMES}


def one_of_each(matcher) -> list[dict]:
    """A credit paying FA-2026-0012, an unknown credit, a debit."""
    return [
        matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012"),
        matcher.credit("BNK-2", "9.99"),
        matcher.credit("BNK-3", "-50.00"),
    ]


async def test_the_outcome_of_each_transaction_is_counted_for_the_operator(matcher):
    before = await counted(matcher)
    await matcher.invoice(number="FA-2026-0012")
    items = one_of_each(matcher)
    await matcher.transactions(*items)
    await matcher.transactions(items[0])

    after = await counted(matcher)
    assert {o: after[o] - before[o] for o in OUTCOMES} == {
        "matched": 1,
        "suggested": 0,
        "unmatched": 1,
        "debit": 1,
        "duplicate": 1,
    }


async def test_an_import_that_fails_to_commit_counts_nothing_and_its_retry_counts_once(
    matcher,
):
    before = await counted(matcher)
    await matcher.invoice(number="FA-2026-0012")
    items = one_of_each(matcher)
    await fail_at_commit(matcher.database.url, "bank_transactions", sqlstate="53100")

    refused = await matcher.post("/v1/bank-transactions", {"items": items})
    assert refused.status_code == 503, refused.text  # disk full: nothing saved, retry later

    assert await matcher.count("bank_transactions") == 0
    assert await counted(matcher) == before
    async with matcher.database.transaction() as session:
        await session.execute(
            text("DROP TRIGGER relance_test_refuse_at_commit ON bank_transactions")
        )
    await matcher.transactions(*items)  # the client tries again
    after = await counted(matcher)
    assert {o: after[o] - before[o] for o in OUTCOMES} == {
        "matched": 1,
        "suggested": 0,
        "unmatched": 1,
        "debit": 1,
        "duplicate": 0,
    }


async def test_a_reference_twice_in_one_import_is_one_transaction(matcher):
    await matcher.invoice(number="FA-2026-0012")
    item = matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012")

    answer = await matcher.transactions(item, item)

    assert (answer["imported"], answer["duplicates"], answer["matched"]) == (1, 1, 1)
    assert len(await matcher.events("payment.matched")) == 1


async def test_two_imports_at_once_paying_one_invoice_pay_it_once(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012")
    items = [
        matcher.credit(f"BNK-{n}", "1200.00", remittance_info="FA-2026-0012") for n in range(4)
    ]

    await asyncio.gather(*(matcher.transactions(item) for item in items))

    (event,) = await matcher.events("payment.matched")
    assert event["invoice_id"] == str(invoice)
    states = [(await matcher.transaction(f"BNK-{n}"))["state"] for n in range(4)]
    assert states.count("matched") == 1


async def test_debits_are_kept_and_never_matched(matcher):
    await matcher.invoice(number="FA-2026-0012", total="42.10")

    answer = await matcher.transactions(
        matcher.credit("BNK-D", "-42.10", remittance_info="FA-2026-0012 avoir")
    )

    assert (answer["imported"], answer["debits"], answer["matched"]) == (1, 1, 0)
    shown = await matcher.transaction("BNK-D")
    assert (shown["state"], shown["amount"], shown["allocations"]) == ("unmatched", "-42.10", [])
    assert await matcher.events("payment.matched") == []


async def test_a_credit_in_another_currency_never_pays_a_euro_invoice(matcher):
    await matcher.invoice(number="FA-2026-0012", total="1200.00")

    await matcher.transactions(
        matcher.credit("BNK-1", "1200.00", currency="USD", remittance_info="FA-2026-0012")
    )

    assert (await matcher.transaction("BNK-1"))["state"] != "matched"
    assert await matcher.events("payment.matched") == []


async def test_an_invoice_paid_meanwhile_is_not_paid_again_by_the_bank(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012")
    await matcher.paid_elsewhere(invoice, amount="1200.00", balance="0.00")

    await matcher.transactions(matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012"))

    assert await matcher.events("payment.matched") == []


async def test_salaries_and_unknown_payers_stay_unmatched(matcher):
    await matcher.invoice(number="FA-2026-0012")

    answer = await matcher.transactions(
        matcher.credit(
            "BNK-1", "2300.00", counterparty_name="URSSAF", remittance_info="SALAIRE MARS"
        )
    )

    assert answer["unmatched"] == 1
    assert (await matcher.transaction("BNK-1"))["state"] == "unmatched"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"amount": "12,00"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"booked_on": "14/04/2026"}, "booked_on"),
        ({"bank_reference": ""}, "bank_reference"),
        ({"bank_reference": "x" * 141}, "bank_reference"),
        ({"counterparty_iban": "FR76 0000 0000 0000"}, "counterparty_iban"),
        ({"remittance_info": "a\x00b"}, "remittance_info"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_a_malformed_item_is_a_422_and_the_import_writes_nothing(matcher, change, where):
    await matcher.invoice(number="FA-2026-0012")
    good = matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012")

    answer = await matcher.post(
        "/v1/bank-transactions", {"items": [good, {**matcher.credit("BNK-2"), **change}]}
    )

    assert answer.status_code == 422, answer.text
    assert where in str(answer.json()["detail"])
    assert await matcher.count("bank_transactions") == 0


@pytest.mark.parametrize(
    "body", [{}, {"items": []}, {"items": "BNK-1"}, [{"bank_reference": "BNK-1"}]]
)
async def test_a_body_without_items_is_a_422(matcher, body):
    answer = await matcher.post("/v1/bank-transactions", body)

    assert answer.status_code == 422


async def test_more_than_20000_items_in_one_request_is_a_422_saying_so(matcher):
    items = [matcher.credit(f"B{n}", "1.00") for n in range(20_001)]

    answer = await matcher.post("/v1/bank-transactions", {"items": items})

    assert answer.status_code == 422
    assert "20000" in answer.text


async def test_the_same_bank_reference_in_two_organizations_is_two_transactions(matcher):
    await matcher.transactions(matcher.credit("BNK-1", "10.00"))
    await matcher.new_organization()

    answer = await matcher.transactions(matcher.credit("BNK-1", "10.00"))

    assert answer["imported"] == 1


async def test_another_organizations_transaction_is_a_404(matcher):
    await matcher.transactions(matcher.credit("BNK-1", "10.00"))
    await matcher.new_organization()

    answer = await matcher.get("/v1/bank-transactions/BNK-1")

    assert answer.status_code == 404


async def test_an_invoice_of_another_organization_is_never_matched(matcher):
    await matcher.invoice(number="FA-2026-0012", payment_reference=REFERENCE)
    await matcher.new_organization()

    answer = await matcher.transactions(
        matcher.credit(
            "BNK-1", "1200.00", creditor_reference=REFERENCE, remittance_info="FA-2026-0012"
        )
    )

    assert answer["unmatched"] == 1
    assert await matcher.events("payment.matched") == []


async def test_without_the_api_key_nothing_is_imported(matcher):
    matcher.key = "rk_unknown"

    answer = await matcher.post("/v1/bank-transactions", {"items": [matcher.credit()]})

    assert answer.status_code == 401


async def test_a_transfer_from_the_customers_known_account_of_the_exact_amount_pays(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012", total="480.00")

    await matcher.transactions(
        matcher.credit(
            "BNK-1", "480.00", counterparty_iban=matcher.IBAN_MARTIN, remittance_info="merci"
        )
    )

    shown = await matcher.transaction("BNK-1")
    assert shown["state"] == "matched"
    assert shown["allocations"][0]["invoice_id"] == str(invoice)


async def test_transactions_page_newest_first_by_state(matcher):
    await matcher.invoice(number="FA-2026-0012")
    await matcher.transactions(
        matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012"),
        *(matcher.credit(f"BNK-U{n}", "3.00", counterparty_name="X") for n in range(3)),
    )

    first = (await matcher.get("/v1/bank-transactions", state="unmatched", limit=2)).json()
    rest = (
        await matcher.get(
            "/v1/bank-transactions", state="unmatched", limit=2, cursor=first["next_cursor"]
        )
    ).json()

    seen = [t["bank_reference"] for t in first["items"] + rest["items"]]
    assert sorted(seen) == ["BNK-U0", "BNK-U1", "BNK-U2"]
    assert rest["next_cursor"] is None
    bad = await matcher.get("/v1/bank-transactions", cursor="not-a-cursor")
    assert bad.status_code == 422


async def test_a_payment_imported_before_its_invoice_was_known_pays_it_when_it_comes(matcher):
    # the bank statement is imported before the matcher has read the invoice's invoice.sent
    # (an invoice imported from elsewhere later, or a consumer behind): the credit waits
    first = await matcher.transactions(
        matcher.credit("BNK-EARLY", "1200.00", remittance_info="Facture FA-2026-0077")
    )
    assert (first["unmatched"], first["matched"]) == (1, 0)

    invoice = await matcher.invoice(number="FA-2026-0077")

    shown = await matcher.transaction("BNK-EARLY")
    assert shown["state"] == "matched"
    assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "1200.00"}]
    (event,) = await matcher.events("payment.matched")
    assert (event["invoice_id"], event["amount"]) == (str(invoice), "1200.00")
    assert await matcher.balance(invoice) == 0
    # it is matched once: the same invoice announced again finds nothing left to match
    await matcher.invoice(number="FA-2026-0077", payment_reference="RF18 5390 0754 7034")
    assert len(await matcher.events("payment.matched")) == 1


async def test_a_waiting_credit_is_only_suggested_when_the_new_invoice_is_not_sure(matcher):
    await matcher.transactions(
        matcher.credit(
            "BNK-EARLY",
            "700.00",
            remittance_info="FA-2026-0077",
            counterparty_name="SOCIETE INCONNUE",
            counterparty_iban="DE89370400440532013000",
        )
    )

    invoice = await matcher.invoice(number="FA-2026-0077")

    shown = await matcher.transaction("BNK-EARLY")
    assert shown["state"] == "suggested"
    (event,) = await matcher.events("payment.suggested")
    assert event["invoice_id"] == str(invoice)
    assert await matcher.events("payment.matched") == []
    assert await matcher.balance(invoice) == 1200


async def test_an_invoice_no_waiting_credit_names_leaves_them_unmatched(matcher):
    await matcher.transactions(
        matcher.credit("BNK-SALARY", "1200.00", remittance_info="SALAIRE NOVEMBRE"),
        matcher.credit("BNK-OTHER", "1200.00", remittance_info="Facture FA-2026-0078"),
    )

    await matcher.invoice(number="FA-2026-0077")

    for reference in ("BNK-SALARY", "BNK-OTHER"):
        assert (await matcher.transaction(reference))["state"] == "unmatched"
    assert await matcher.events("payment.matched") == []


async def test_a_late_update_of_a_paid_invoice_does_not_pay_it_again(matcher):
    invoice = await matcher.invoice(number="FA-2026-0077")
    await matcher.transactions(matcher.credit("BNK-A", "1200.00", remittance_info="FA-2026-0077"))
    # the customer paid twice: the second transfer finds nothing open and waits
    await matcher.transactions(matcher.credit("BNK-B", "1200.00", remittance_info="FA-2026-0077"))
    assert (await matcher.transaction("BNK-B"))["state"] == "unmatched"

    # an invoice.updated that invoice-api sent before it recorded the first payment
    await matcher.invoice(number="FA-2026-0077", invoice_id=invoice, announced_as=InvoiceUpdated)

    assert (await matcher.transaction("BNK-B"))["state"] == "unmatched"
    assert len(await matcher.events("payment.matched")) == 1
