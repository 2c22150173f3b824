"""Probable payments wait for a person: listed, confirmed (the payment is recorded and the
payer learned) or rejected (never proposed again, the hold on reminders ends), once."""

from __future__ import annotations

import uuid

import pytest


async def suggestion(matcher, amount: str = "480.00", **credit_fields) -> dict:
    """Import a credit that only a fuzzy payer name ties to the invoice: a suggestion."""
    fields = {"counterparty_name": "BOULANGERIE MARTINN", "remittance_info": "virement avril"}
    await matcher.transactions(matcher.credit("BNK-S", amount, **{**fields, **credit_fields}))
    listed = (await matcher.get("/v1/matches", state="suggested")).json()["items"]
    assert listed, "the credit is suggested"
    return dict(listed[0])


async def test_a_probable_payment_is_suggested_and_holds_the_invoice(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=())

    found = await suggestion(matcher)

    assert found["state"] == "suggested"
    assert found["evidence"] == "name"
    assert 0 < found["confidence"] < 1
    assert found["allocations"] == [{"invoice_id": str(invoice), "amount": "480.00"}]
    assert (found["amount"], found["bank_reference"]) == ("480.00", "BNK-S")
    shown = await matcher.transaction("BNK-S")
    assert (shown["state"], shown["suggestions"]) == ("suggested", [found["id"]])
    (event,) = await matcher.events("payment.suggested")
    assert event["invoice_id"] == str(invoice)
    assert await matcher.events("payment.matched") == []
    assert await matcher.balance(invoice) == 480


async def test_confirming_records_the_payment_and_learns_the_payers_account(matcher):
    customer = uuid.uuid4()
    invoice = await matcher.invoice(
        number="FA-2026-0012", total="480.00", ibans=(), customer_id=customer
    )
    later = await matcher.invoice(
        number="FA-2026-0040", total="75.00", ibans=(), customer_id=customer
    )
    found = await suggestion(matcher, counterparty_iban=matcher.IBAN_MARTIN)

    answer = await matcher.post(f"/v1/matches/{found['id']}/confirm")

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "confirmed"
    shown = await matcher.transaction("BNK-S")
    assert shown["state"] == "matched"
    assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "480.00"}]
    (confirmed,) = await matcher.events("payment.suggestion_confirmed")
    (paid,) = await matcher.events("payment.matched")
    assert paid["confirmed_by_person"] is True
    assert paid["match_id"] == confirmed["match_id"]
    assert await matcher.balance(invoice) == 0
    # the next transfer from that account, of an exact balance, needs nobody
    await matcher.transactions(
        matcher.credit("BNK-2", "75.00", counterparty_iban=matcher.IBAN_MARTIN)
    )
    assert (await matcher.transaction("BNK-2"))["allocations"][0]["invoice_id"] == str(later)


async def test_rejecting_ends_the_hold_and_the_pair_is_not_proposed_again(matcher):
    invoice = await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=())
    found = await suggestion(matcher)
    rejections = await matcher.metric("relance_match_decisions_total", decision="rejected")

    answer = await matcher.post(f"/v1/matches/{found['id']}/reject")

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "rejected"
    (rejected,) = await matcher.events("payment.suggestion_rejected")
    assert rejected["invoice_id"] == str(invoice)
    shown = await matcher.transaction("BNK-S")
    assert (shown["state"], shown["suggestions"]) == ("unmatched", [])
    assert (await matcher.get("/v1/matches", state="suggested")).json()["items"] == []
    assert await matcher.count("rejected_pairs") == 1
    assert await matcher.balance(invoice) == 480
    assert (
        await matcher.metric("relance_match_decisions_total", decision="rejected") == rejections + 1
    )


@pytest.mark.parametrize(("first", "second"), [("confirm", "confirm"), ("reject", "confirm")])
async def test_a_decision_is_taken_once(matcher, first, second):
    await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=())
    found = await suggestion(matcher)
    await matcher.post(f"/v1/matches/{found['id']}/{first}")

    again = await matcher.post(f"/v1/matches/{found['id']}/{second}")

    assert again.status_code == 409
    assert "not waiting for a decision" in again.json()["detail"]
    assert len(await matcher.events("payment.matched")) == (1 if first == "confirm" else 0)


async def test_another_organizations_match_is_a_404_and_stays_undecided(matcher):
    await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=())
    found = await suggestion(matcher)
    owner = (matcher.org, matcher.key)
    await matcher.new_organization()

    answers = [
        await matcher.post(f"/v1/matches/{found['id']}/confirm"),
        await matcher.post(f"/v1/matches/{found['id']}/reject"),
        await matcher.get(f"/v1/matches/{found['id']}"),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    matcher.org, matcher.key = owner
    assert (await matcher.get(f"/v1/matches/{found['id']}")).json()["state"] == "suggested"


async def test_an_unknown_match_is_a_404_and_a_malformed_id_a_422(matcher):
    unknown = await matcher.post(f"/v1/matches/{uuid.uuid4()}/confirm")
    malformed = await matcher.post("/v1/matches/not-an-id/confirm")

    assert (unknown.status_code, malformed.status_code) == (404, 422)


async def test_automatic_matches_are_listed_too_but_cannot_be_decided(matcher):
    await matcher.invoice(number="FA-2026-0012")
    await matcher.transactions(matcher.credit("BNK-1", "1200.00", remittance_info="FA-2026-0012"))

    (found,) = (await matcher.get("/v1/matches", state="matched")).json()["items"]
    answer = await matcher.post(f"/v1/matches/{found['id']}/reject")

    assert found["evidence"] == "number"
    assert answer.status_code == 409


async def test_the_account_and_name_a_person_teaches_match_the_credits_that_waited(matcher):
    customer = uuid.uuid4()
    await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=(), customer_id=customer)
    rent = await matcher.invoice(
        number="FA-2026-0040", total="75.00", ibans=(), customer_id=customer
    )
    fees = await matcher.invoice(
        number="FA-2026-0041", total="130.00", ibans=(), customer_id=customer
    )
    # the customer pays from its landlord's account: nothing ties these to it yet
    other = {"counterparty_name": "SCI DES LILAS", "counterparty_iban": "DE89370400440532013000"}
    await matcher.transactions(
        matcher.credit("BNK-IBAN", "75.00", **other),
        matcher.credit("BNK-NAME", "130.00", counterparty_name="SCI des Lilas"),
    )
    assert (await matcher.transaction("BNK-IBAN"))["state"] == "unmatched"
    assert (await matcher.transaction("BNK-NAME"))["state"] == "unmatched"
    found_later = "relance_bank_transactions_found_later_total"
    before = {s: await matcher.metric(found_later, outcome=s) for s in ("matched", "suggested")}
    found = await suggestion(
        matcher, remittance_info="acompte FA-2026-0012", amount="400.00", **other
    )

    answer = await matcher.post(f"/v1/matches/{found['id']}/confirm")

    assert answer.status_code == 200, answer.text
    # the account is now the customer's: its exact amount is paid
    by_iban = await matcher.transaction("BNK-IBAN")
    assert by_iban["state"] == "matched"
    assert by_iban["allocations"] == [{"invoice_id": str(rent), "amount": "75.00"}]
    # a name is never enough to record a payment: it is suggested
    by_name = await matcher.transaction("BNK-NAME")
    assert by_name["state"] == "suggested"
    proposed = (await matcher.get(f"/v1/matches/{by_name['suggestions'][0]}")).json()
    assert proposed["allocations"] == [{"invoice_id": str(fees), "amount": "130.00"}]
    paid = {e["bank_reference"] for e in await matcher.events("payment.matched")}
    assert paid == {"BNK-S", "BNK-IBAN"}
    assert {s: await matcher.metric(found_later, outcome=s) - before[s] for s in before} == {
        "matched": 1,
        "suggested": 1,
    }


async def test_a_credit_rejected_for_an_invoice_waits_again_but_never_for_that_invoice(matcher):
    customer = uuid.uuid4()
    first = await matcher.invoice(
        number="FA-2026-0040", total="75.00", ibans=(), customer_id=customer
    )
    iban = "DE89370400440532013000"
    await matcher.transactions(
        matcher.credit(
            "BNK-R", "75.00", counterparty_name="BOULANGERIE MARTINN", counterparty_iban=iban
        )
    )
    (proposed,) = (await matcher.get("/v1/matches", state="suggested")).json()["items"]
    await matcher.post(f"/v1/matches/{proposed['id']}/reject")
    assert (await matcher.transaction("BNK-R"))["state"] == "unmatched"
    await matcher.invoice(number="FA-2026-0012", total="480.00", ibans=(), customer_id=customer)
    found = await suggestion(
        matcher,
        remittance_info="acompte FA-2026-0012",
        amount="400.00",
        counterparty_name="SCI DES LILAS",
        counterparty_iban=iban,
    )

    # the account becomes the customer's: BNK-R is tried again, 75.00 from it
    await matcher.post(f"/v1/matches/{found['id']}/confirm")

    shown = await matcher.transaction("BNK-R")
    proposed_again = [
        a["invoice_id"]
        for match_id in shown["suggestions"]
        for a in (await matcher.get(f"/v1/matches/{match_id}")).json()["allocations"]
    ]
    assert str(first) not in proposed_again
    assert shown["allocations"] == []
    assert await matcher.balance(first) == 75
