"""HTTP bodies of the payment-matcher, in and out, and how a transaction or a match read by
the service becomes its answer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relance.common.fields import Currency, Iban, SignedAmount
from relance.common.money import amount_problem, quantize
from relance.payment_matcher.service import ImportResult, MatchView, TransactionView
from relance.payment_matcher.statements import BankTransaction

MAX_ITEMS = 20_000


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bank_reference: Annotated[str, Field(min_length=1, max_length=140)]
    booked_on: date
    amount: SignedAmount = Field(
        description="a credit (> 0) is matched to invoices; a debit (< 0) is kept, never matched"
    )
    currency: Currency
    counterparty_name: Annotated[str, Field(max_length=200)] | None = None
    counterparty_iban: Iban | None = None
    remittance_info: Annotated[str, Field(max_length=1000)] | None = None
    creditor_reference: Annotated[str, Field(max_length=35)] | None = None

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> Self:
        problem = amount_problem(abs(self.amount), self.currency)
        if problem:
            raise ValueError(f"amount {problem}")
        return self

    def transaction(self) -> BankTransaction:
        return BankTransaction(**self.model_dump())


class TransactionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TransactionIn] = Field(min_length=1, max_length=MAX_ITEMS)


class ImportOut(BaseModel):
    imported: int = Field(description="new transactions kept")
    duplicates: int = Field(description="bank_reference already known: nothing done again")
    matched: int
    suggested: int
    unmatched: int
    debits: int = Field(description="kept, never matched to sales invoices")


class AllocationOut(BaseModel):
    invoice_id: UUID
    amount: str


class TransactionOut(BaseModel):
    bank_reference: str
    state: Literal["matched", "suggested", "unmatched"]
    allocations: list[AllocationOut] = Field(description="what it paid, once matched")
    confidence: float | None = None
    booked_on: date
    amount: str
    currency: str
    counterparty_name: str | None
    counterparty_iban: str | None
    remittance_info: str | None
    customer_id: UUID | None = Field(description="the payer, once matched")
    excess: str = Field(description="the part above the invoices paid, kept as the payer's credit")
    suggestions: list[UUID] = Field(description="ids of the matches waiting for a decision")


class MatchOut(BaseModel):
    id: UUID
    bank_reference: str
    state: Literal["matched", "suggested", "confirmed", "rejected", "dismissed"]
    confidence: float
    evidence: str = Field(description="reference, number, iban or name: what found it")
    customer_id: UUID | None
    allocations: list[AllocationOut]
    amount: str
    currency: str
    booked_on: date
    counterparty_name: str | None
    remittance_info: str | None
    created_at: datetime
    decided_at: datetime | None


def import_out(result: ImportResult) -> ImportOut:
    return ImportOut(
        imported=result.imported,
        duplicates=result.duplicates,
        matched=result.matched,
        suggested=result.suggested,
        unmatched=result.unmatched,
        debits=result.debits,
    )


def transaction_out(view: TransactionView) -> TransactionOut:
    row, found = view.row, view.matches
    paying = [m for m in found if m.state in ("matched", "confirmed")]
    paid = [a for m in paying for a in view.allocations[m.id]]
    best = paying[0] if paying else found[0] if found else None  # found: best first
    return TransactionOut(
        bank_reference=row.bank_reference,
        state=row.state,
        allocations=[_allocation(a, row.currency) for a in paid],
        confidence=best.confidence if best else None,
        booked_on=row.booked_on,
        amount=_money(row.amount, row.currency),
        currency=row.currency,
        counterparty_name=row.counterparty_name,
        counterparty_iban=row.counterparty_iban,
        remittance_info=row.remittance_info,
        customer_id=paying[0].customer_id if paying else None,
        excess=_money(
            row.amount - sum((a.amount for a in paid), Decimal(0)) if paid else Decimal(0),
            row.currency,
        ),
        suggestions=[m.id for m in found if m.state == "suggested"],
    )


def match_out(view: MatchView) -> MatchOut:
    row = view.row
    return MatchOut(
        id=row.id,
        bank_reference=row.bank_reference,
        state=row.state,
        confidence=row.confidence,
        evidence=row.evidence,
        customer_id=row.customer_id,
        allocations=[_allocation(a, row.currency) for a in view.allocations],
        amount=_money(row.amount, row.currency),
        currency=row.currency,
        booked_on=row.booked_on,
        counterparty_name=row.counterparty_name,
        remittance_info=row.remittance_info,
        created_at=row.created_at,
        decided_at=row.decided_at,
    )


def _allocation(row: Any, currency: str) -> AllocationOut:
    return AllocationOut(invoice_id=row.invoice_id, amount=_money(row.amount, currency))


def _money(amount: Decimal, currency: str) -> str:
    return format(quantize(amount, currency), "f")
