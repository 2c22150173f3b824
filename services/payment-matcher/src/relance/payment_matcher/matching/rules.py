"""The decision: which of the invoices found by reference, number, IBAN or name a credit
pays, and whether that is sure enough to record (matched) or goes to a person (suggested).
The thresholds and confidences are here; ``matching``'s docstring states the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from relance.payment_matcher.matching.amounts import (
    allocate_oldest_first,
    exact_combinations,
    oldest_first,
    paid_in_full,
)
from relance.payment_matcher.matching.values import (
    Allocation,
    Candidate,
    Credit,
    Evidence,
    Match,
    OpenInvoice,
)

if TYPE_CHECKING:
    from relance.payment_matcher.matching.book import OpenBook

MAX_CANDIDATES = 3  # suggestions shown to a person
EXCESS_TOLERANCE = Decimal("0.05")  # an excess up to 5 % of the total found stays matched
FEE_ABSOLUTE = Decimal("15")  # below a balance by this much (or FEE_RELATIVE): bank fees
FEE_RELATIVE = Decimal("0.02")

CONFIDENCE_REFERENCE = 0.99
CONFIDENCE_NUMBER = 0.95
CONFIDENCE_IBAN_EXACT = 0.9
CONFIDENCE_IBAN_COMBINATION = 0.85
CONFIDENCE_LARGE_EXCESS = 0.7  # reference or number found, far more money than their total
CONFIDENCE_PAYER_CONFLICT = 0.7  # number found, but the IBAN is another customer's
CONFIDENCE_UNCONFIRMED = 0.7  # number found, amount not exact, the payer not recognized
CONFIDENCE_SETTLED_BY_NAME = 0.75  # number of several customers, the name tells which
CONFIDENCE_OVERRULED = 0.65  # a later rule's sure answer, after an earlier rule found others
CONFIDENCE_AMBIGUOUS = 0.5  # several invoices or customers fit the same evidence
CONFIDENCE_EXACT_AMONG_SEVERAL = 0.6  # one of several exact amounts of an identified payer
CONFIDENCE_FEES = 0.45  # an identified payer's invoice, a little more than the amount
CONFIDENCE_OLDEST_FIRST = 0.3  # an identified payer's invoices, oldest first
NAME_WEIGHT = 0.8  # rule 4's confidence: rule 3's, times this, times score / 100


@dataclass(frozen=True, slots=True)
class _Plan:
    """How an amount pays invoices that evidence found (all of one customer)."""

    allocations: tuple[Allocation, ...]
    excess: Decimal
    consistent: bool
    alternatives: tuple[tuple[Allocation, ...], ...] = ()  # when ambiguous, each reading
    total: Decimal = Decimal(0)  # the balances of the invoices found


def _plan(found: Sequence[OpenInvoice], amount: Decimal) -> _Plan:
    """Pay the invoices found (oldest first) with ``amount`` and say whether the amount
    is consistent with them (``matching``'s docstring says what that means)."""
    total = sum((i.balance for i in found), Decimal(0))
    if amount == total:
        return _Plan(paid_in_full(found), Decimal(0), consistent=True, total=total)
    if amount > total:
        excess = amount - total
        consistent = excess <= total * EXCESS_TOLERANCE
        return _Plan(paid_in_full(found), excess, consistent, total=total)
    if len(found) > 1:
        fits, complete = exact_combinations(found, amount, sizes=range(1, len(found)))
        if len(fits) == 1 and complete:
            return _Plan(
                paid_in_full(oldest_first(fits[0])), Decimal(0), consistent=True, total=total
            )
        if len(fits) > 1:
            readings = tuple(paid_in_full(oldest_first(f)) for f in fits)
            return _Plan(readings[0], Decimal(0), False, alternatives=readings, total=total)
    allocations, _ = allocate_oldest_first(found, amount)
    return _Plan(allocations, Decimal(0), consistent=True, total=total)


def decide(book: OpenBook, credit: Credit, excluded: frozenset[UUID]) -> Match:
    """The rules of ``matching``'s docstring, for one credit (of a positive amount)."""
    return _Matching(book, credit, excluded).run()


class _Matching:
    """One credit going through the rules (a helper of :meth:`OpenBook.match`)."""

    def __init__(self, book: OpenBook, credit: Credit, excluded: frozenset[UUID]) -> None:
        self.book = book
        self.credit = credit
        self.amount = credit.amount
        self.currency = credit.currency.upper()
        self.excluded = excluded
        self.iban_payers = book.payers_by_iban(credit.counterparty_iban)
        self._name_payer: tuple[UUID, float] | None = None
        self._name_done = False
        self.suggestions: list[tuple[Candidate, UUID]] = []

    @property
    def iban_payer(self) -> UUID | None:
        return next(iter(self.iban_payers)) if len(self.iban_payers) == 1 else None

    @property
    def name_payer(self) -> tuple[UUID, float] | None:
        if not self._name_done:
            self._name_done = True
            self._name_payer = self.book.payer_by_name(self.credit.counterparty_name)
        return self._name_payer

    def invoice(self, invoice_id: UUID) -> OpenInvoice:
        return self.book._invoices[invoice_id]

    def suggest(
        self,
        customer: UUID,
        allocations: tuple[Allocation, ...],
        confidence: float,
        evidence: Evidence,
    ) -> None:
        if allocations:
            self.suggestions.append((Candidate(allocations, confidence, evidence), customer))

    def run(self) -> Match:
        """Each rule in turn: the first that is sure answers "matched", unless an earlier
        rule found something else (then it is one more suggestion)."""
        by_reference, text = self.book._find_by_reference(self.credit)
        stages: tuple[tuple[Evidence, list[frozenset[UUID]]], ...] = (
            ("reference", by_reference),
            ("number", self.book._find_by_number(text)),
        )
        for evidence, readings in stages:
            found = [
                eligible
                for reading in readings
                if (eligible := self.book._eligible(reading, self.currency, self.excluded))
            ]
            if found:
                matched = self.settle_or_suggest(self.judge_found(evidence, found))
                if matched is not None:
                    return matched
        matched = self.settle_or_suggest(self.by_payer())
        return matched if matched is not None else self.answer()

    def settle_or_suggest(self, matched: Match | None) -> Match | None:
        """A sure match stands only if no earlier rule pointed elsewhere."""
        if matched is None or not self.suggestions:
            return matched
        assert matched.customer_id is not None
        candidate = matched.candidates[0]
        confidence = min(candidate.confidence, CONFIDENCE_OVERRULED)
        self.suggestions.append((replace(candidate, confidence=confidence), matched.customer_id))
        return None

    def judge_found(self, evidence: Evidence, readings: list[frozenset[UUID]]) -> Match | None:
        """Rules 1 and 2: the invoices found by references or numbers. A Match when the
        evidence is enough to record a payment, else suggestions."""
        customers = {self.invoice(i).customer_id for r in readings for i in r}
        settled_by_name = False
        if len(customers) > 1:
            payer = self.iban_payer
            if payer is None or payer not in customers:
                named = self.name_payer
                payer = named[0] if named is not None and named[0] in customers else None
                settled_by_name = payer is not None
            if payer is None:
                self.suggest_each_customer(readings, evidence)
                return None
            readings = [
                kept
                for r in readings
                if (kept := frozenset(i for i in r if self.invoice(i).customer_id == payer))
            ]
            customers = {payer}
        (customer,) = customers
        ambiguous_token = any(len(r) > 1 for r in readings)
        invoices = oldest_first(self.invoice(i) for i in frozenset().union(*readings))
        plan = _plan(invoices, self.amount)
        confidence = CONFIDENCE_REFERENCE if evidence == "reference" else CONFIDENCE_NUMBER
        conflict = (
            evidence == "number" and bool(self.iban_payers) and customer not in self.iban_payers
        )
        if evidence == "number" and not conflict and plan.total != self.amount:
            conflict = self.exact_elsewhere(invoices)
        if plan.alternatives:
            for alternative in plan.alternatives:
                self.suggest(customer, alternative, CONFIDENCE_AMBIGUOUS, evidence)
            return None
        unconfirmed = (
            evidence == "number"
            and plan.consistent
            and self.amount != self.balances(plan.allocations)
            and not self.payer_agrees(customer)
        )
        if plan.consistent and not (ambiguous_token or settled_by_name or conflict or unconfirmed):
            candidate = Candidate(plan.allocations, confidence, evidence)
            return Match("matched", customer, (candidate,), plan.excess)
        if unconfirmed:
            confidence = CONFIDENCE_UNCONFIRMED
        if ambiguous_token:
            confidence = CONFIDENCE_AMBIGUOUS
        elif settled_by_name:
            confidence = CONFIDENCE_SETTLED_BY_NAME
        elif conflict:
            confidence = CONFIDENCE_PAYER_CONFLICT
        if not plan.consistent:  # a large excess: maybe other invoices make it up
            confidence = min(confidence, CONFIDENCE_LARGE_EXCESS)
            others = [
                i
                for i in self.book._customer_invoices(customer, self.currency, self.excluded)
                if all(i.invoice_id != a.invoice_id for a in plan.allocations)
            ]
            extra, _ = exact_combinations(others, plan.excess, sizes=range(1, 4), limit=1)
            if extra:
                allocations = paid_in_full(oldest_first([*invoices, *extra[0]]))
                self.suggest(customer, allocations, confidence + 0.05, evidence)
        if ambiguous_token:  # each reading of the ambiguous numbers on its own
            for reading in readings:
                if len(reading) > 1:
                    for invoice_id in sorted(reading, key=lambda i: i.hex):
                        single = _plan([self.invoice(invoice_id)], self.amount)
                        self.suggest(customer, single.allocations, confidence, evidence)
        self.suggest(customer, plan.allocations, confidence, evidence)
        return None

    def balances(self, allocations: tuple[Allocation, ...]) -> Decimal:
        """The balances of the invoices the allocations pay (in full or in part)."""
        return sum((self.invoice(a.invoice_id).balance for a in allocations), Decimal(0))

    def payer_agrees(self, customer: UUID) -> bool:
        """Whether the IBAN or the name says the credit comes from ``customer``."""
        if customer in self.iban_payers:
            return True
        named = self.name_payer
        return named is not None and named[0] == customer

    def exact_elsewhere(self, found: Sequence[OpenInvoice]) -> bool:
        """Whether the payer known by IBAN has one other invoice of exactly the amount, when
        the numbers found do not add up to it (a mistyped number, likely): suggested."""
        payer = self.iban_payer
        if payer is None:
            return False
        ids = {i.invoice_id for i in found}
        exact = [
            i
            for i in self.book._customer_invoices(payer, self.currency, self.excluded)
            if i.balance == self.amount and i.invoice_id not in ids
        ]
        if len(exact) != 1:
            return False
        self.suggest(payer, paid_in_full(exact), CONFIDENCE_PAYER_CONFLICT - 0.05, "iban")
        return True

    def suggest_each_customer(self, readings: list[frozenset[UUID]], evidence: Evidence) -> None:
        """Numbers or references of several customers: each customer's invoices, the
        customer of the oldest invoice first."""
        by_customer: dict[UUID, list[OpenInvoice]] = {}
        for invoice in oldest_first(self.invoice(i) for i in {i for r in readings for i in r}):
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
        for customer, invoices in by_customer.items():
            plan = _plan(invoices, self.amount)
            exact = plan.consistent and plan.excess == 0
            confidence = CONFIDENCE_AMBIGUOUS + (0.05 if exact else 0.0)
            self.suggest(customer, plan.allocations, confidence, evidence)

    def by_payer(self) -> Match | None:
        """Rules 3 and 4: a payer known by IBAN, else by name, then the amounts."""
        payer = self.iban_payer
        if payer is not None:
            matched = self.by_amount(payer, "iban", 1.0)
            if matched is not None:
                return matched
            if any(customer == payer for _, customer in self.suggestions):
                return None
        named = self.name_payer
        if named is not None and named[0] != payer:
            self.by_amount(named[0], "name", NAME_WEIGHT * named[1] / 100.0)
        return None

    def by_amount(self, customer: UUID, evidence: Evidence, weight: float) -> Match | None:
        invoices = self.book._customer_invoices(customer, self.currency, self.excluded)
        if not invoices:
            return None
        singles = [i for i in invoices if i.balance == self.amount]
        combinations: list[tuple[OpenInvoice, ...]] = []
        complete = True
        if len(singles) < MAX_CANDIDATES:  # else ambiguous already, and no room to show more
            combinations, complete = exact_combinations(invoices, self.amount)
        if evidence == "iban" and complete and len(singles) + len(combinations) == 1:
            if singles:
                candidate = Candidate(paid_in_full(singles), CONFIDENCE_IBAN_EXACT, evidence)
            else:
                allocations = paid_in_full(combinations[0])
                candidate = Candidate(allocations, CONFIDENCE_IBAN_COMBINATION, evidence)
            return Match("matched", customer, (candidate,), Decimal(0))
        if singles or combinations:
            alone = len(singles) + len(combinations) == 1 and complete
            for invoice in singles:
                confidence = CONFIDENCE_IBAN_EXACT if alone else CONFIDENCE_EXACT_AMONG_SEVERAL
                self.suggest(customer, paid_in_full([invoice]), weight * confidence, evidence)
            for combination in combinations:
                confidence = (
                    CONFIDENCE_IBAN_COMBINATION if alone else CONFIDENCE_EXACT_AMONG_SEVERAL - 0.05
                )
                self.suggest(customer, paid_in_full(combination), weight * confidence, evidence)
            return None
        near = [
            i
            for i in invoices
            if self.amount < i.balance <= self.amount + max(FEE_ABSOLUTE, i.balance * FEE_RELATIVE)
        ]
        near.sort(key=lambda i: i.balance - self.amount)
        for invoice in near[:2]:
            allocation = (Allocation(invoice.invoice_id, self.amount),)
            self.suggest(customer, allocation, weight * CONFIDENCE_FEES, evidence)
        allocations, _ = allocate_oldest_first(invoices, self.amount)
        self.suggest(customer, allocations, weight * CONFIDENCE_OLDEST_FIRST, evidence)
        return None

    def answer(self) -> Match:
        if not self.suggestions:
            return Match("unmatched", self.iban_payer, (), Decimal(0))
        ranked = sorted(
            enumerate(self.suggestions), key=lambda item: (-item[1][0].confidence, item[0])
        )
        chosen: list[tuple[Candidate, UUID]] = []
        seen: set[tuple[Allocation, ...]] = set()
        for _, (candidate, customer) in ranked:
            key = tuple(sorted(candidate.allocations, key=lambda a: a.invoice_id.hex))
            if key in seen:
                continue
            seen.add(key)
            chosen.append((candidate, customer))
            if len(chosen) == MAX_CANDIDATES:
                break
        customers = {customer for _, customer in chosen}
        customer_id = next(iter(customers)) if len(customers) == 1 else None
        return Match("suggested", customer_id, tuple(c for c, _ in chosen), Decimal(0))
