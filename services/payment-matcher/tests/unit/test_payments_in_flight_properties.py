"""A payment is never counted twice, whatever order things happen in: bank imports, the
payments invoice-api records (the matcher's, a person's), the invoice changes it announces
and the moment the matcher reads each of its events, checked by hypothesis on the rules
themselves (``OpenBook`` and ``balance_here``) with invoice-api played by a small model of
what it does: it records a match once, never above its balance, and says so in order. The
matcher may read the invoice's ``invoice.sent`` after some of its payments were imported:
those credits wait, and are matched when it does."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.payment_matcher.matching import (
    Credit,
    OpenBook,
    OpenInvoice,
    Payer,
    balance_here,
)

TOTAL = Decimal("1200.00")
NUMBER = "FA-2026-0077"
IBAN = "FR7630006000011234567890189"
CUSTOMER = uuid.uuid4()
INVOICE = uuid.uuid4()


@dataclass
class InvoiceApi:
    """invoice-api's side of one invoice: what it was paid, and the events it sends the
    matcher (in order, as one invoice's events are), each with the balance at that time."""

    paid: Decimal = Decimal(0)
    recorded: set[UUID] = field(default_factory=set)
    inbox: deque[tuple[UUID, Decimal]] = field(default_factory=deque)  # payment.matched
    # balance, acknowledged match: invoice.sent first, then invoice.updated, payment.reported
    outbox: deque[tuple[Decimal, UUID | None]] = field(
        default_factory=lambda: deque([(TOTAL, None)])
    )

    @property
    def balance(self) -> Decimal:
        return TOTAL - self.paid

    def read_a_match(self) -> None:
        match_id, amount = self.inbox.popleft()
        if match_id in self.recorded or self.balance <= 0:
            return  # recorded once; nothing recorded on a paid invoice (no acknowledgment)
        self.recorded.add(match_id)
        self.paid += min(amount, self.balance)
        self.outbox.append((self.balance, match_id))  # payment.reported naming the match

    def a_person_reports(self, share: Decimal) -> None:
        amount = (self.balance * share).quantize(Decimal("0.01"))
        if amount > 0:
            self.paid += amount
            self.outbox.append((self.balance, None))  # payment.reported

    def announce(self) -> None:
        self.outbox.append((self.balance, None))  # invoice.updated: its balance now


@dataclass
class Matcher:
    """The payment-matcher's copy of the invoice, kept as the service keeps it."""

    known: bool = False  # it has read the invoice.sent
    balance: Decimal = Decimal(0)
    in_flight: dict[UUID, Decimal] = field(default_factory=dict)
    matched: Decimal = Decimal(0)  # what all its matches recorded on the invoice
    waiting: list[Credit] = field(default_factory=list)  # unmatched credits

    def book(self) -> OpenBook:
        invoices = []
        if self.known and self.balance > 0:
            invoices.append(
                OpenInvoice(
                    invoice_id=INVOICE,
                    customer_id=CUSTOMER,
                    number=NUMBER,
                    payment_reference=None,
                    currency="EUR",
                    balance=self.balance,
                    due_date=date(2026, 5, 1),
                    sent_on=date(2026, 4, 1),
                )
            )
        return OpenBook(invoices, [Payer(CUSTOMER, ("Boulangerie Martin",), (IBAN,))])

    def imports(self, credit: Credit, api: InvoiceApi) -> str:
        match = self.book().match(credit)
        if match.state == "unmatched":
            self.waiting.append(credit)
        if match.state != "matched":
            return match.state
        for allocation in match.candidates[0].allocations:
            match_id = uuid.uuid4()
            self.matched += allocation.amount
            self.in_flight[match_id] = allocation.amount
            self.balance = max(self.balance - allocation.amount, Decimal(0))
            api.inbox.append((match_id, allocation.amount))
        return match.state

    def reads(self, reported: Decimal, acknowledged: UUID | None, api: InvoiceApi) -> None:
        if acknowledged is not None:
            self.in_flight.pop(acknowledged, None)
        self.balance = balance_here(reported, self.in_flight.values())
        if not self.known:  # the invoice is new here: the credits that waited for it
            self.known = True
            waiting, self.waiting = self.waiting, []
            for credit in waiting:
                self.imports(credit, api)  # an unmatched one waits again


AMOUNTS = st.sampled_from(["1200.00", "600.00", "1250.00", "200.00", "1199.99", "0.01"]).map(
    Decimal
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("import"), AMOUNTS, st.booleans()),
        st.tuples(st.just("invoice-api reads a match")),
        st.tuples(st.just("a person reports a payment"), st.sampled_from(["0.25", "0.5", "1"])),
        st.tuples(st.just("invoice-api updates the invoice")),
        st.tuples(st.just("the matcher reads an event")),
    ),
    max_size=40,
)


def play(steps: list[tuple[object, ...]]) -> tuple[Matcher, InvoiceApi]:
    matcher, api = Matcher(), InvoiceApi()
    for step in steps:
        match step:
            case ("import", Decimal() as amount, bool(by_number)):
                text = f"Facture {NUMBER}" if by_number else None
                matcher.imports(
                    Credit(amount, "EUR", counterparty_iban=IBAN, remittance_info=text), api
                )
            case ("invoice-api reads a match",) if api.inbox:
                api.read_a_match()
            case ("a person reports a payment", str(share)):
                api.a_person_reports(Decimal(share))
            case ("invoice-api updates the invoice",):
                api.announce()
            case ("the matcher reads an event",) if api.outbox:
                matcher.reads(*api.outbox.popleft(), api)
        assert matcher.matched <= TOTAL, steps
    return matcher, api


@settings(max_examples=600, deadline=None)
@given(STEPS)
def test_what_the_matcher_records_on_an_invoice_never_exceeds_its_total(steps):
    play(steps)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_once_every_event_is_read_the_matcher_has_invoice_apis_balance(steps):
    matcher, api = play(steps)
    while api.inbox or api.outbox:
        if api.inbox:
            api.read_a_match()
        while api.outbox:
            matcher.reads(*api.outbox.popleft(), api)
    # a match invoice-api did not record (the invoice was paid meanwhile) stays in flight,
    # on an invoice at zero
    assert matcher.balance == api.balance


def test_a_stale_balance_alone_would_let_a_second_transfer_pay_the_invoice_again():
    # the sequence the rule is for: a full payment, then invoice-api's balance from before it
    steps: list[tuple[object, ...]] = [
        ("the matcher reads an event",),  # invoice.sent
        ("import", TOTAL, True),
        ("invoice-api updates the invoice",),  # sent before it read the match
        ("the matcher reads an event",),
        ("import", TOTAL, True),
    ]
    matcher, _ = play(steps)
    assert matcher.matched == TOTAL
    assert matcher.balance == 0


@given(
    st.decimals(min_value=0, max_value=10_000, places=2),
    st.lists(st.decimals(min_value=0, max_value=5_000, places=2), max_size=5),
)
def test_the_balance_to_match_is_what_invoice_api_says_less_what_it_has_not_seen(
    reported, unacknowledged
):
    balance = balance_here(reported, unacknowledged)
    assert balance >= 0
    assert balance <= reported
    assert balance == max(reported - sum(unacknowledged, Decimal(0)), Decimal(0))
    assert balance_here(reported, []) == reported
