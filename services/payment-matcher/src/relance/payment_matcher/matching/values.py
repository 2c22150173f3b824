"""The values the matching rules take and answer: open invoices, payers, credits, and the
match decided for a credit (its candidates, each with its allocations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

Evidence = Literal["reference", "number", "iban", "name"]
MatchState = Literal["matched", "suggested", "unmatched"]


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    invoice_id: UUID
    customer_id: UUID
    number: str
    payment_reference: str | None  # e.g. an ISO 11649 "RF18 5390 0754 7034" as printed
    currency: str
    balance: Decimal  # > 0
    due_date: date
    sent_on: date  # for "oldest first"


@dataclass(frozen=True, slots=True)
class Payer:
    """What is known of a customer as a payer."""

    customer_id: UUID
    names: tuple[str, ...]  # the customer's name and names learned from confirmed matches
    ibans: tuple[str, ...]  # normalized IBANs: the customer's and those learned


@dataclass(frozen=True, slots=True)
class Credit:
    amount: Decimal  # > 0
    currency: str
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    remittance_info: str | None = None
    creditor_reference: str | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice_id: UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way the credit may pay: one or several invoices."""

    allocations: tuple[Allocation, ...]
    confidence: float  # 0..1
    evidence: Evidence  # what found it

    @property
    def invoice_ids(self) -> frozenset[UUID]:
        return frozenset(a.invoice_id for a in self.allocations)

    @property
    def total(self) -> Decimal:
        return sum((a.amount for a in self.allocations), Decimal(0))


@dataclass(frozen=True, slots=True)
class Match:
    state: MatchState
    customer_id: UUID | None  # matched: the customer; suggested: when all candidates agree
    # matched: exactly one (what to record); suggested: 1 to 3, best first; unmatched: ()
    candidates: tuple[Candidate, ...]
    excess: Decimal  # matched: the part of the credit above the balances paid, else 0


UNMATCHED = Match("unmatched", None, (), Decimal(0))
