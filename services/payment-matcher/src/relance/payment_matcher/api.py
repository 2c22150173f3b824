"""HTTP routes of the payment-matcher (docs/api.md): bank transactions in, as JSON or as a
statement file; what became of each; the suggestions a person confirms or rejects. Each
route parses, calls one use case of ``service`` and answers what it returns."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.errors import Unprocessable
from relance.common.paging import Page, decode_cursor, decode_uuid_cursor, encode_cursor
from relance.common.tenants import TenantDep
from relance.common.textguard import StoredText, unstorable_in, unstorable_message
from relance.payment_matcher import service
from relance.payment_matcher.schemas import (
    ImportOut,
    MatchOut,
    TransactionOut,
    TransactionsIn,
    import_out,
    match_out,
    transaction_out,
)
from relance.payment_matcher.statements import CsvMapping, StatementError, parse_statement

router = APIRouter(prefix="/v1")

MAX_FILE_BYTES = 20 * 1024 * 1024


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "not in this organization"}}


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
    return import_out(result)


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
        raise Unprocessable("mapping", f"mapping is not JSON: {exc}") from None
    except StatementError as exc:
        raise Unprocessable("file", str(exc)) from None
    except TypeError as exc:  # a mapping that is JSON but not an object
        raise Unprocessable("mapping", f"mapping must be a JSON object ({exc})") from None
    if not transactions:
        raise Unprocessable("file", "the statement has no transactions")
    result = await service.import_transactions(s, t.id, transactions, rt.clock.now())
    return import_out(result)


def _csv_mapping(raw: Any) -> CsvMapping:
    # the form field is checked as text, but its JSON may still hold "\u0000" escapes
    for loc, what in unstorable_in(raw):
        raise Unprocessable(
            "mapping", f"{'.'.join(map(str, loc)) or 'mapping'}: {unstorable_message(what)}"
        )
    return CsvMapping.from_dict(raw)


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
    views = await service.list_transactions(s, t.id, state, limit, after)
    last = views[-1].row if len(views) == limit else None
    return Page(
        items=[transaction_out(v) for v in views],
        next_cursor=encode_cursor(last.imported_at, last.bank_reference) if last else None,
    )


@router.get("/bank-transactions/{bank_reference}", responses=NOT_FOUND, tags=["bank transactions"])
async def get_transaction(bank_reference: str, t: TenantDep, s: SessionDep) -> TransactionOut:
    return transaction_out(await service.get_transaction(s, t.id, bank_reference))


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
    views = await service.list_matches(s, t.id, state, limit, after)
    last = views[-1].row if len(views) == limit else None
    return Page(
        items=[match_out(v) for v in views],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get("/matches/{match_id}", responses=NOT_FOUND, tags=["matches"])
async def get_match(match_id: UUID, t: TenantDep, s: SessionDep) -> MatchOut:
    return match_out(await service.get_match(s, t.id, match_id))


@router.post(
    "/matches/{match_id}/confirm",
    responses={**NOT_FOUND, 409: {"description": "already decided"}},
    tags=["matches"],
)
async def confirm_match(match_id: UUID, t: TenantDep, s: SessionDep, rt: RuntimeDep) -> MatchOut:
    """The suggested payment is right: it is recorded on the invoices (``payment.matched``),
    the transaction's other suggestions are dismissed, and the payer's account and name are
    remembered for the next transfers."""
    await service.confirm_match(s, t.id, match_id, rt.clock.now())
    return match_out(await service.get_match(s, t.id, match_id))


@router.post(
    "/matches/{match_id}/reject",
    responses={**NOT_FOUND, 409: {"description": "already decided"}},
    tags=["matches"],
)
async def reject_match(match_id: UUID, t: TenantDep, s: SessionDep, rt: RuntimeDep) -> MatchOut:
    """The suggested payment is wrong: the pair is never proposed again and the invoices'
    reminders go on (the hold ends)."""
    await service.reject_match(s, t.id, match_id, rt.clock.now())
    return match_out(await service.get_match(s, t.id, match_id))
