"""HTTP routes of the payment-matcher (docs/api.md): bank transactions in, as JSON or as a
statement file; what became of each; the suggestions a person confirms or rejects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.fields import Currency, Iban, SignedAmount
from relance.common.money import amount_problem, quantize
from relance.common.paging import Page, decode_cursor, decode_uuid_cursor, encode_cursor
from relance.common.tenants import AuthorizationHeader, Tenant, tenant_by_key
from relance.common.textguard import StoredText, unstorable_in, unstorable_message
from relance.payment_matcher import repository as repo
from relance.payment_matcher import service
from relance.payment_matcher.service import ImportResult
from relance.payment_matcher.statements import (
    BankTransaction,
    CsvMapping,
    StatementError,
    parse_statement,
)

router = APIRouter(prefix="/v1")

MAX_ITEMS = 20_000
MAX_FILE_BYTES = 20 * 1024 * 1024


async def tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(tenant)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "not in this organization"}}


# Bodies


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


# Importing


@router.post("/bank-transactions", status_code=202, tags=["bank transactions"])
async def import_transactions(
    body: TransactionsIn, t: TenantDep, s: SessionDep, rt: RuntimeDep
) -> ImportOut:
    """Import transactions (a bank aggregator's feed, say). A ``bank_reference`` already
    imported is a duplicate and changes nothing; each new credit is matched at once."""
    result = await service.import_transactions(
        s, t.id, [item.transaction() for item in body.items], rt.clock.now()
    )
    return _import_out(result)


@router.post(
    "/bank-statements",
    status_code=202,
    tags=["bank transactions"],
    responses={
        413: {"description": f"a file over {MAX_FILE_BYTES // (1024 * 1024)} MiB"},
        422: {"description": "not a statement this service reads: says what and where"},
    },
)
async def import_statement(
    t: TenantDep,
    s: SessionDep,
    rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="CAMT.053 XML, MT940, OFX or CSV")],
    mapping: Annotated[
        StoredText | None,
        Form(description="CSV only: JSON object of column names", max_length=4000),
    ] = None,
    account: Annotated[
        StoredText | None,
        Form(description="the account, for references derived from it", max_length=64),
    ] = None,
) -> ImportOut:
    """Import a statement file, all or nothing: a file that does not read whole imports
    nothing (422 with where it stops)."""
    content = await file.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="statement file too large")
    try:
        csv_mapping = _csv_mapping(json.loads(mapping)) if mapping else None
        # parsing 10 MB takes seconds of CPU: in a thread, other requests go on meanwhile
        transactions = await asyncio.to_thread(
            parse_statement,
            content,
            filename=file.filename,
            csv_mapping=csv_mapping,
            account=account,
        )
    except json.JSONDecodeError as exc:
        raise _unprocessable("mapping", f"mapping is not JSON: {exc}") from None
    except StatementError as exc:
        raise _unprocessable("file", str(exc)) from None
    except TypeError as exc:  # a mapping that is JSON but not an object
        raise _unprocessable("mapping", f"mapping must be a JSON object ({exc})") from None
    if not transactions:
        raise _unprocessable("file", "the statement has no transactions")
    result = await service.import_transactions(s, t.id, transactions, rt.clock.now())
    return _import_out(result)


def _csv_mapping(raw: Any) -> CsvMapping:
    # the form field is checked as text, but its JSON may still hold "\u0000" escapes
    for loc, what in unstorable_in(raw):
        raise _unprocessable(
            "mapping", f"{'.'.join(map(str, loc)) or 'mapping'}: {unstorable_message(what)}"
        )
    return CsvMapping.from_dict(raw)


def _import_out(result: ImportResult) -> ImportOut:
    return ImportOut(
        imported=result.imported,
        duplicates=result.duplicates,
        matched=result.matched,
        suggested=result.suggested,
        unmatched=result.unmatched,
        debits=result.debits,
    )


def _unprocessable(field: str, message: str, where: str = "body") -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": [where, field], "msg": message, "type": "value_error"}],
    )


# Reading


@router.get("/bank-transactions", tags=["bank transactions"])
async def list_transactions(
    t: TenantDep,
    s: SessionDep,
    state: Literal["matched", "suggested", "unmatched"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> Page[TransactionOut]:
    """Newest import first; ``next_cursor`` gives the next page."""
    after = decode_cursor(cursor) if cursor else None
    rows = await repo.list_transactions(s, t.id, state, limit, after)
    last = rows[-1] if len(rows) == limit else None
    return Page(
        items=await _transactions_out(s, t.id, rows),
        next_cursor=encode_cursor(last.imported_at, last.bank_reference) if last else None,
    )


@router.get("/bank-transactions/{bank_reference}", responses=NOT_FOUND, tags=["bank transactions"])
async def get_transaction(bank_reference: str, t: TenantDep, s: SessionDep) -> TransactionOut:
    row = await repo.get_transaction(s, t.id, bank_reference)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such bank transaction")
    (found,) = await _transactions_out(s, t.id, [row])
    return found


async def _transactions_out(
    s: AsyncSession, org_id: UUID, rows: Sequence[Any]
) -> list[TransactionOut]:
    """The transactions with what they paid and what waits: two queries for the page."""
    found = await repo.matches_of_transactions(
        s, org_id, [row.bank_reference for row in rows], ["matched", "confirmed", "suggested"]
    )
    paying = [m.id for m in found if m.state in ("matched", "confirmed")]
    allocations = await repo.allocations_of(s, paying)
    by_transaction: dict[str, list[Any]] = {}
    for match in found:
        by_transaction.setdefault(match.bank_reference, []).append(match)
    return [
        _transaction_out(row, by_transaction.get(row.bank_reference, []), allocations)
        for row in rows
    ]


def _transaction_out(
    row: Any, found: Sequence[Any], allocations: dict[UUID, list[Any]]
) -> TransactionOut:
    paying = [m for m in found if m.state in ("matched", "confirmed")]
    paid = [a for m in paying for a in allocations[m.id]]
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


@router.get("/matches", tags=["matches"])
async def list_matches(
    t: TenantDep,
    s: SessionDep,
    state: Literal["matched", "suggested", "confirmed", "rejected", "dismissed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> Page[MatchOut]:
    """Matches, newest first; ``?state=suggested`` is the list a person works through."""
    after = decode_uuid_cursor(cursor) if cursor else None
    rows = await repo.list_matches(s, t.id, state, limit, after)
    allocations = await repo.allocations_of(s, [r.id for r in rows])
    last = rows[-1] if len(rows) == limit else None
    return Page(
        items=[_match_out(r, allocations[r.id]) for r in rows],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get("/matches/{match_id}", responses=NOT_FOUND, tags=["matches"])
async def get_match(match_id: UUID, t: TenantDep, s: SessionDep) -> MatchOut:
    return await _match(s, t.id, match_id)


@router.post(
    "/matches/{match_id}/confirm",
    responses={**NOT_FOUND, 409: {"description": "already decided"}},
    tags=["matches"],
)
async def confirm_match(match_id: UUID, t: TenantDep, s: SessionDep, rt: RuntimeDep) -> MatchOut:
    """The suggested payment is right: it is recorded on the invoices (``payment.matched``),
    the transaction's other suggestions are dismissed, and the payer's account and name are
    remembered for the next transfers."""
    await _decide(service.confirm_match, s, t.id, match_id, rt.clock.now())
    return await _match(s, t.id, match_id)


@router.post(
    "/matches/{match_id}/reject",
    responses={**NOT_FOUND, 409: {"description": "already decided"}},
    tags=["matches"],
)
async def reject_match(match_id: UUID, t: TenantDep, s: SessionDep, rt: RuntimeDep) -> MatchOut:
    """The suggested payment is wrong: the pair is never proposed again and the invoices'
    reminders go on (the hold ends)."""
    await _decide(service.reject_match, s, t.id, match_id, rt.clock.now())
    return await _match(s, t.id, match_id)


async def _decide(decision: Any, s: AsyncSession, org_id: UUID, match_id: UUID, now: Any) -> None:
    await decision(s, org_id, match_id, now)


async def _match(s: AsyncSession, org_id: UUID, match_id: UUID) -> MatchOut:
    rows = await repo.list_matches(s, org_id, None, 1, None, match_id=match_id)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such match")
    allocations = await repo.allocations_of(s, [match_id])
    return _match_out(rows[0], allocations[match_id])


def _match_out(row: Any, allocations: list[Any]) -> MatchOut:
    return MatchOut(
        id=row.id,
        bank_reference=row.bank_reference,
        state=row.state,
        confidence=row.confidence,
        evidence=row.evidence,
        customer_id=row.customer_id,
        allocations=[_allocation(a, row.currency) for a in allocations],
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
