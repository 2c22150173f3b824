"""What must hold for every credit and every book, checked by hypothesis over random books
(customers with names and IBANs, invoices with colliding numbers, amounts and currencies)
and random credits (references, numbers in any spelling, noise, known or unknown payers,
rejected invoices)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relance.payment_matcher.matching import (
    MAX_CANDIDATES,
    Credit,
    Match,
    OpenBook,
    OpenInvoice,
    Payer,
    credit_lookup_keys,
    find_references,
    invoice_lookup_keys,
    normalize_iban,
    number_key,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = ("Acme Outillage", "Boulangerie Martin", "Cabinet Durand", "Martin Freres", "Zeta SA")
IBANS = (
    "FR7630006000011234567890189",
    "DE89370400440532013000",
    "BE68539007547034",
    "NL91ABNA0417164300",
    "GB29NWBK60161331926819",
)
AMOUNTS = tuple(
    Decimal(a) for a in ("10.00", "25.50", "40.00", "50.00", "99.99", "100.00", "250.00")
)
DAY0 = date(2026, 9, 1)


def rf(body: str) -> str:
    """The ISO 11649 reference of ``body`` (letters and digits), check digits computed."""
    numeric = "".join(str(int(c, 36)) for c in (body + "RF00").upper())
    return f"RF{98 - int(numeric) % 97:02d}{body}"


def spellings(number: str) -> list[str]:
    """Ways a payer may write an invoice number the book must still find."""
    digits = [g for g in "".join(c if c.isdigit() else " " for c in number).split()]
    letters = "".join(c for c in number.split(digits[0])[0] if c.isalpha())
    stripped = [g.lstrip("0") or "0" for g in digits]
    forms = [number, number.lower(), f"Facture {number}", f"({number})"]
    if len(digits) > 1:
        forms += [
            "/".join(stripped),
            f"{letters.lower()}{''.join(digits)}",
            "Fact. " + "/".join(stripped),
        ]
    return forms


def same_number(a: str, b: str) -> bool:
    """Whether two invoice numbers are one for the rules (``FA-2025-0001``, ``2025/00001``)."""
    ka, kb = number_key(a), number_key(b)
    assert ka is not None
    assert kb is not None
    forms_a = {ka.groups, (ka.joined,)} if ka.joined else {ka.groups}
    forms_b = {kb.groups, (kb.joined,)} if kb.joined else {kb.groups}
    return bool(forms_a & forms_b)


@st.composite
def invoice_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["FA-", "F", "INV-", "", "FAC/", "A"]))
    year = draw(st.sampled_from(["2025", "2026"]))
    sequence = draw(st.integers(1, 40))
    width = draw(st.sampled_from([4, 5, 6]))
    separator = draw(st.sampled_from(["-", "/", ""]))
    if separator == "" and prefix in ("", "A"):
        separator = "-"
    return f"{prefix}{year}{separator}{sequence:0{width}d}"


@st.composite
def books(draw: st.DrawFn) -> tuple[list[OpenInvoice], list[Payer]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    customer_count = draw(st.integers(1, 4))
    customers = [UUID(int=rng.getrandbits(128)) for _ in range(customer_count)]
    payers = [
        Payer(
            customer,
            (NAMES[n % len(NAMES)],),
            (IBANS[n % len(IBANS)],) if rng.random() < 0.8 else (),
        )
        for n, customer in enumerate(customers)
    ]
    invoices = []
    for n in range(draw(st.integers(0, 12))):
        number = draw(invoice_numbers())
        sent = DAY0 + timedelta(days=rng.randint(0, 60))
        invoices.append(
            OpenInvoice(
                invoice_id=UUID(int=rng.getrandbits(128)),
                customer_id=rng.choice(customers),
                number=number,
                payment_reference=rf(f"{n:04d}{rng.randint(0, 999)}")
                if rng.random() < 0.4
                else None,
                currency="EUR" if rng.random() < 0.85 else "USD",
                balance=rng.choice(AMOUNTS)
                if rng.random() < 0.8
                else Decimal(rng.randint(1, 99999)) / 100,
                due_date=sent + timedelta(days=30),
                sent_on=sent,
            )
        )
    return invoices, payers


@st.composite
def credits(draw: st.DrawFn, invoices: list[OpenInvoice]) -> Credit:
    rng = random.Random(draw(st.integers(0, 2**32)))
    words: list[str] = []
    for invoice in rng.sample(invoices, k=min(len(invoices), rng.choice([0, 0, 1, 1, 2, 3]))):
        words.append(rng.choice(spellings(invoice.number)))
        if invoice.payment_reference and rng.random() < 0.3:
            words.append(invoice.payment_reference)
    words += rng.sample(
        ["VIR SEPA", "merci", "1250,00 EUR", "12", "2026", "RF00 1234", "du 2026-11-23"], k=2
    )
    rng.shuffle(words)
    picked = [i for i in invoices if rng.random() < 0.3]
    amount = sum((i.balance for i in picked), Decimal(0)) or rng.choice(AMOUNTS)
    amount += rng.choice(
        [Decimal(0), Decimal(0), Decimal("-5.00"), Decimal("3.00"), Decimal("-0.01")]
    )
    reference = None
    if invoices and rng.random() < 0.2:
        reference = rng.choice(invoices).payment_reference
    return Credit(
        amount=max(amount, Decimal("0.01")),
        currency=rng.choice(["EUR", "EUR", "EUR", "USD", "GBP"]),
        counterparty_name=rng.choice([None, *NAMES, "BOULANGERIE MARTNI", "M. DURAND"]),
        counterparty_iban=rng.choice([None, *IBANS, "FR1420041010050500013M02606"]),
        remittance_info=" ".join(words) or None,
        creditor_reference=reference,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[OpenInvoice], list[Payer], Credit, set[UUID]]:
    invoices, payers = draw(books())
    credit = draw(credits(invoices))
    excluded = {i.invoice_id for i in invoices if draw(st.integers(0, 9)) == 0}
    return invoices, payers, credit, excluded


def check_answer(
    match: Match, credit: Credit, book: dict[UUID, OpenInvoice], excluded: set[UUID]
) -> None:
    """The invariants of any answer, whatever the rule that gave it."""
    assert match.excess >= 0
    if match.state == "unmatched":
        assert match.candidates == ()
        assert match.excess == 0
        return
    if match.state == "matched":
        assert len(match.candidates) == 1
        assert match.customer_id is not None
        total = match.candidates[0].total
        assert total + match.excess == credit.amount
        assert {book[a.invoice_id].customer_id for a in match.candidates[0].allocations} == {
            match.customer_id
        }
    else:
        assert 1 <= len(match.candidates) <= MAX_CANDIDATES
        assert match.excess == 0
        confidences = [c.confidence for c in match.candidates]
        assert confidences == sorted(confidences, reverse=True)
    for candidate in match.candidates:
        assert 0.0 <= candidate.confidence <= 1.0
        assert candidate.allocations
        assert candidate.total <= credit.amount
        ids = [a.invoice_id for a in candidate.allocations]
        assert len(ids) == len(set(ids))
        for allocation in candidate.allocations:
            invoice = book[allocation.invoice_id]
            assert allocation.invoice_id not in excluded
            assert invoice.currency == credit.currency
            assert 0 < allocation.amount <= invoice.balance


@PROPERTY_SETTINGS
@given(scenarios())
def test_every_answer_pays_only_open_invoices_in_the_credits_currency_within_their_balances(
    scenario,
):
    invoices, payers, credit, excluded = scenario
    book = OpenBook(invoices, payers)
    match = book.match(credit, excluded=excluded)
    check_answer(match, credit, {i.invoice_id: i for i in invoices}, excluded)


@PROPERTY_SETTINGS
@given(scenarios())
def test_an_excluded_invoice_never_appears_and_the_rest_is_unchanged_by_excluding_nothing(scenario):
    invoices, payers, credit, _ = scenario
    book = OpenBook(invoices, payers)
    everything = book.match(credit, excluded={i.invoice_id for i in invoices})
    assert everything.candidates == ()
    assert book.match(credit) == book.match(credit, excluded=set())


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_the_order_invoices_were_loaded(scenario, rnd):
    invoices, payers, credit, excluded = scenario
    shuffled = list(invoices)
    rnd.shuffle(shuffled)
    first = OpenBook(invoices, payers).match(credit, excluded=excluded)
    second = OpenBook(shuffled, payers).match(credit, excluded=excluded)
    assert first == second


@PROPERTY_SETTINGS
@given(scenarios())
def test_matching_changes_nothing_and_settling_lowers_balances_by_what_was_recorded(scenario):
    invoices, payers, credit, excluded = scenario
    book = OpenBook(invoices, payers)
    before = {i.invoice_id: i.balance for i in invoices if i.balance > 0}
    match = book.match(credit, excluded=excluded)
    assert {i: book.get(i).balance for i in before} == before  # type: ignore[union-attr]
    if match.state != "matched":
        return
    book.settle(match.candidates[0].allocations)
    for allocation in match.candidates[0].allocations:
        left = before[allocation.invoice_id] - allocation.amount
        settled = book.get(allocation.invoice_id)
        assert (settled is None) == (left == 0)
        assert settled is None or settled.balance == left
    assert len(book) == len(before) - sum(
        1 for a in match.candidates[0].allocations if a.amount == before[a.invoice_id]
    )


@PROPERTY_SETTINGS
@given(scenarios(), st.sampled_from(["USD", "GBP", "CHF", "JPY"]))
def test_a_credit_never_pays_an_invoice_in_another_currency(scenario, currency):
    invoices, payers, credit, _ = scenario
    euros = [i for i in invoices if i.currency == "EUR"]
    book = OpenBook([*euros], payers)
    match = book.match(replace(credit, currency=currency))
    assert match.state == "unmatched"


@PROPERTY_SETTINGS
@given(invoice_numbers(), st.data())
def test_any_usual_spelling_of_a_number_finds_its_invoice_and_a_longer_number_does_not(
    number, data
):
    customer = UUID(int=1)
    invoice = OpenInvoice(UUID(int=2), customer, number, None, "EUR", Decimal("70.00"), DAY0, DAY0)
    book = OpenBook([invoice], [Payer(customer, ("Acme",), ())])
    spelling = data.draw(st.sampled_from(spellings(number)))
    found = book.match(Credit(Decimal("70.00"), "EUR", remittance_info=f"VIR {spelling} merci"))
    assert found.state == "matched", spelling
    digit = data.draw(st.sampled_from("0123456789"))
    # a digit more at the end, or at the start (not a 0: leading zeros do not count)
    longer = f"{int(digit) or 1}{number}" if number[0].isdigit() else number + digit
    missed = book.match(Credit(Decimal("70.00"), "EUR", remittance_info=f"VIR {longer} merci"))
    assert missed.state == "unmatched", longer


@PROPERTY_SETTINGS
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=21), st.data())
def test_a_reference_is_found_in_any_grouping_and_a_mistyped_character_is_refused(body, data):
    reference = rf(body)
    grouped = " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))
    spelled = data.draw(st.sampled_from([reference, grouped, grouped.lower(), reference.lower()]))
    assert reference in {r for r, _, _ in find_references(f"paiement {spelled} merci")}
    digits = [p for p in range(2, len(reference)) if reference[p].isdigit()]
    if digits:
        position = data.draw(st.sampled_from(digits))
        replacement = data.draw(st.sampled_from("0123456789"))
        typo = reference[:position] + replacement + reference[position + 1 :]
        if typo != reference:
            assert typo not in {r for r, _, _ in find_references(typo)}


def test_iban_normalization_is_idempotent():
    for iban in IBANS:
        assert normalize_iban(normalize_iban(iban.lower())) == iban


@PROPERTY_SETTINGS
@given(books(), st.data())
def test_a_credit_with_an_invoices_reference_and_balance_records_that_payment(book, data):
    invoices, payers = book
    references = [i.payment_reference for i in invoices if i.payment_reference]
    unique = [
        i for i in invoices if i.payment_reference and references.count(i.payment_reference) == 1
    ]
    if not unique:
        return
    target = data.draw(st.sampled_from(unique))
    assert target.payment_reference is not None
    if data.draw(st.booleans()):
        fields = {"creditor_reference": target.payment_reference}
    else:
        fields = {"remittance_info": f"Ref {target.payment_reference} merci"}
    match = OpenBook(invoices, payers).match(
        Credit(
            target.balance,
            target.currency,
            counterparty_iban=data.draw(st.sampled_from(IBANS)),
            **fields,
        )
    )
    assert match.state == "matched"
    assert match.customer_id == target.customer_id
    assert [(a.invoice_id, a.amount) for a in match.candidates[0].allocations] == [
        (target.invoice_id, target.balance)
    ]


@PROPERTY_SETTINGS
@given(books(), st.data())
def test_a_credit_naming_an_invoice_alone_with_its_balance_records_that_payment(book, data):
    invoices, payers = book
    unique = [
        i
        for i in invoices
        if not any(same_number(i.number, o.number) for o in invoices if o is not i)
    ]
    if not unique:
        return
    target = data.draw(st.sampled_from(unique))
    spelled = data.draw(st.sampled_from(spellings(target.number)))
    own = next(p.ibans for p in payers if p.customer_id == target.customer_id)
    iban = data.draw(st.sampled_from([None, "FR1420041010050500013M02606", *own]))
    match = OpenBook(invoices, payers).match(
        Credit(
            target.balance,
            target.currency,
            counterparty_iban=iban,
            remittance_info=f"VIR {spelled}",
        )
    )
    assert match.state == "matched", spelled
    assert [(a.invoice_id, a.amount) for a in match.candidates[0].allocations] == [
        (target.invoice_id, target.balance)
    ]


@PROPERTY_SETTINGS
@given(scenarios())
def test_an_invoice_found_by_reference_or_number_shares_a_lookup_key_with_the_credit(scenario):
    # what lets an invoice known after its payment find the credit that waited for it: the
    # keys are only a filter, so they must never miss what the rules would find
    invoices, payers, credit, excluded = scenario
    match = OpenBook(invoices, payers).match(credit, excluded=excluded)
    by_id = {i.invoice_id: i for i in invoices}
    keys = credit_lookup_keys(credit)
    for candidate in match.candidates:
        if candidate.evidence not in ("reference", "number"):
            continue
        named = [
            bool(keys & invoice_lookup_keys(invoice.number, invoice.payment_reference))
            for invoice in (by_id[a.invoice_id] for a in candidate.allocations)
        ]
        # a sure match pays only invoices the credit names; a suggestion may add the
        # customer's other invoices that make up the amount, but names one at least
        assert all(named) if match.state == "matched" else any(named), (credit, candidate)


@PROPERTY_SETTINGS
@given(invoice_numbers(), st.data())
def test_any_usual_spelling_of_a_number_shares_a_lookup_key_with_its_invoice(number, data):
    spelling = data.draw(st.sampled_from(spellings(number)))
    credit = Credit(Decimal("70.00"), "EUR", remittance_info=f"VIR {spelling} merci")
    assert credit_lookup_keys(credit) & invoice_lookup_keys(number, None), spelling
