"""Importing bank transactions and matching their credits, and matching again the credits
left waiting once an invoice or a payer they may name becomes known.
Each runs in the caller's transaction, which writes its rows and its events together, under
the organization's lock, so every import matches against the balances the previous one left."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events import Event, Payload
from relance.common.events.payment_events import (
    PaymentMatched,
    PaymentSuggested,
)
from relance.common.logging import get_logger
from relance.common.money import quantize
from relance.common.outbox import add_events
from relance.payment_matcher import repository as repo
from relance.payment_matcher.matching import (
    Candidate,
    Credit,
    Match,
    OpenBook,
    OpenInvoice,
    Payer,
    credit_lookup_keys,
)
from relance.payment_matcher.service.metrics import (
    BANK_TRANSACTIONS,
    BANK_TRANSACTIONS_FOUND_LATER,
    IMPORT_DURATION,
    count_on_commit,
)
from relance.payment_matcher.statements import BankTransaction
from relance.payment_matcher.tables import bank_transactions, match_allocations, matches

SOURCE = "payment-matcher"
PROGRESS_EVERY = 10_000
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    duplicates: int
    matched: int
    suggested: int
    unmatched: int
    debits: int


def allocation_match_id(match_id: UUID, invoice_id: UUID) -> UUID:
    """The ``match_id`` of one invoice's part of a match, in events: invoice-api records each
    bank payment once per this id, the scheduler holds each suggested invoice by it."""
    return uuid.uuid5(match_id, str(invoice_id))


def open_book(invoice_rows: Sequence[Any], payer_rows: Sequence[Any]) -> OpenBook:
    """The rules' index of an organization's open invoices and payers, from their rows."""
    invoices = [
        OpenInvoice(
            invoice_id=row["invoice_id"],
            customer_id=row["customer_id"],
            number=row["number"],
            payment_reference=row["payment_reference"],
            currency=row["currency"],
            balance=quantize(row["balance"], row["currency"]),
            due_date=row["due_date"],
            sent_on=row["sent_on"],
        )
        for row in invoice_rows
    ]
    payers = [
        Payer(
            customer_id=row["customer_id"],
            names=(row["name"], *row["learned_names"]),
            ibans=(*row["ibans"], *row["learned_ibans"]),
        )
        for row in payer_rows
    ]
    return OpenBook(invoices, payers)


async def import_transactions(
    session: AsyncSession, org_id: UUID, transactions: Sequence[BankTransaction], now: datetime
) -> ImportResult:
    """Keep the new transactions (a ``bank_reference`` seen before, in this import or an
    earlier one, is a duplicate and changes nothing) and match their credits, oldest first.

    Building the index and matching take seconds of CPU for a large organization: they run
    in a thread, so that the service goes on answering (health checks, other requests)."""
    started = time.perf_counter()
    await repo.lock_organization(session, org_id)
    known = await repo.known_references(session, org_id, [t.bank_reference for t in transactions])
    fresh: list[BankTransaction] = []
    for transaction in transactions:
        if transaction.bank_reference not in known:
            known.add(transaction.bank_reference)
            fresh.append(transaction)
    fresh.sort(key=lambda t: (t.booked_on, t.bank_reference))
    credits = sum(1 for t in fresh if t.amount > 0)
    rows: tuple[Sequence[Any], Sequence[Any]] = ((), ())
    if credits:
        rows = (await repo.open_invoices_of(session, org_id), await repo.payers_of(session, org_id))
    loaded = time.perf_counter()
    writer = await asyncio.to_thread(_match_all, fresh, rows, org_id, now)
    matched = time.perf_counter()
    await writer.flush(session)
    result = ImportResult(
        imported=len(fresh),
        duplicates=len(transactions) - len(fresh),
        matched=writer.counts["matched"],
        suggested=writer.counts["suggested"],
        unmatched=writer.counts["unmatched"],
        debits=len(fresh) - credits,
    )
    for outcome, count in (
        ("matched", result.matched),
        ("suggested", result.suggested),
        ("unmatched", result.unmatched),
        ("debit", result.debits),
        ("duplicate", result.duplicates),
    ):
        count_on_commit(session, BANK_TRANSACTIONS.labels(outcome), count)
    IMPORT_DURATION.observe(time.perf_counter() - started)
    log.info(
        "bank transactions imported",
        organization_id=str(org_id),
        **asdict(result),
        open_invoices=len(rows[0]),
        load_seconds=round(loaded - started, 3),
        match_seconds=round(matched - loaded, 3),
        write_seconds=round(time.perf_counter() - matched, 3),
    )
    return result


def _match_all(
    transactions: Sequence[BankTransaction],
    rows: tuple[Sequence[Any], Sequence[Any]],
    org_id: UUID,
    now: datetime,
    *,
    waiting: bool = False,
    excluded: Mapping[str, Collection[UUID]] | None = None,
) -> _Writer:
    """Match each credit against the book, oldest first, each seeing the balances the
    previous ones left. ``waiting``: unmatched credits of earlier imports, of which only
    those the book now explains are recorded; otherwise every transaction is new.
    ``excluded``: by bank reference, the invoices a person rejected for the transaction."""
    book = open_book(*rows) if rows[0] else OpenBook()
    writer = _Writer(org_id, now)
    rejected = excluded or {}
    for done, transaction in enumerate(transactions, start=1):
        match = (
            book.match(_credit(transaction), excluded=rejected.get(transaction.bank_reference, ()))
            if transaction.amount > 0
            else None
        )
        if match is not None and match.state == "matched":
            book.settle(match.candidates[0].allocations)
        if not waiting:
            writer.add(transaction, match)
        elif match is not None and match.state != "unmatched":
            writer.add_found_at_last(transaction, match)
        if done % PROGRESS_EVERY == 0:
            log.info("matching bank transactions", done=done, of=len(transactions))
    return writer


def _credit(transaction: BankTransaction | Any) -> Credit:
    """The rules' view of a transaction (a new one, or a row of ``bank_transactions``)."""
    return Credit(
        amount=transaction.amount,
        currency=transaction.currency,
        counterparty_name=transaction.counterparty_name,
        counterparty_iban=transaction.counterparty_iban,
        remittance_info=transaction.remittance_info,
        creditor_reference=transaction.creditor_reference,
    )


def waiting_keys(transaction: BankTransaction | Any) -> list[str] | None:
    """What an unmatched credit keeps to be found again (``lookup_keys``); None for a debit."""
    if transaction.amount <= 0:
        return None
    return sorted(credit_lookup_keys(_credit(transaction))) or None


class _Writer:
    """The rows and events of one import, written together at the end."""

    def __init__(self, org_id: UUID, now: datetime) -> None:
        self.org_id = org_id
        self.now = now
        self.transactions: list[dict[str, Any]] = []
        self.matches: list[dict[str, Any]] = []
        self.allocations: list[dict[str, Any]] = []
        # (match_id, invoice_id, bank_reference, amount)
        self.paid_off: list[tuple[UUID, UUID, str, Decimal]] = []
        self.events: list[Event[Any]] = []
        self.counts = {"matched": 0, "suggested": 0, "unmatched": 0}
        self.found_at_last: list[tuple[str, str]] = []  # earlier credits: (reference, state)

    def add(self, transaction: BankTransaction, match: Match | None) -> None:
        state = match.state if match is not None else "unmatched"
        keys = waiting_keys(transaction) if state == "unmatched" else None
        self.transactions.append(
            {
                "organization_id": self.org_id,
                "bank_reference": transaction.bank_reference,
                "booked_on": transaction.booked_on,
                "amount": transaction.amount,
                "currency": transaction.currency,
                "counterparty_name": transaction.counterparty_name,
                "counterparty_iban": transaction.counterparty_iban,
                "remittance_info": transaction.remittance_info,
                "creditor_reference": transaction.creditor_reference,
                "state": state,
                "imported_at": self.now,
                "lookup_keys": keys,
            }
        )
        if match is None:
            return
        self.counts[state] += 1
        for candidate in match.candidates:
            self._add_match(transaction, candidate, state, match.customer_id)

    def add_found_at_last(self, transaction: BankTransaction, match: Match) -> None:
        """An unmatched credit of an earlier import that a newly known invoice explains."""
        self.found_at_last.append((transaction.bank_reference, match.state))
        self.counts[match.state] += 1
        for candidate in match.candidates:
            self._add_match(transaction, candidate, match.state, match.customer_id)

    def _add_match(
        self,
        transaction: BankTransaction,
        candidate: Candidate,
        state: str,
        customer_id: UUID | None,
    ) -> None:
        match_id = uuid.uuid4()
        self.matches.append(
            {
                "id": match_id,
                "organization_id": self.org_id,
                "bank_reference": transaction.bank_reference,
                "state": state,
                "confidence": candidate.confidence,
                "evidence": candidate.evidence,
                "customer_id": customer_id,
                "created_at": self.now,
                "decided_at": self.now if state == "matched" else None,
            }
        )
        for allocation in candidate.allocations:
            self.allocations.append(
                {
                    "match_id": match_id,
                    "invoice_id": allocation.invoice_id,
                    "amount": allocation.amount,
                }
            )
            event_match_id = allocation_match_id(match_id, allocation.invoice_id)
            payload: Payload
            if state == "matched":
                self.paid_off.append(
                    (
                        event_match_id,
                        allocation.invoice_id,
                        transaction.bank_reference,
                        allocation.amount,
                    )
                )
                payload = PaymentMatched(
                    invoice_id=allocation.invoice_id,
                    match_id=event_match_id,
                    bank_reference=transaction.bank_reference,
                    amount=allocation.amount,
                    currency=transaction.currency,
                    booked_on=transaction.booked_on,
                )
            else:
                payload = PaymentSuggested(
                    invoice_id=allocation.invoice_id,
                    match_id=event_match_id,
                    bank_reference=transaction.bank_reference,
                    amount=allocation.amount,
                    currency=transaction.currency,
                    booked_on=transaction.booked_on,
                    confidence=candidate.confidence,
                )
            self.events.append(new_event(payload, self.org_id, self.now))

    async def flush(self, session: AsyncSession) -> None:
        await repo.copy_rows(session, bank_transactions, self.transactions)
        await repo.set_transaction_states(session, self.org_id, self.found_at_last)
        await repo.copy_rows(session, matches, self.matches)
        await repo.copy_rows(session, match_allocations, self.allocations)
        await repo.record_payments(session, self.org_id, self.paid_off)
        await add_events(session, self.events)


def new_event(payload: Payload, org_id: UUID, now: datetime) -> Event[Any]:
    return Event.new(payload, source=SOURCE, organization_id=org_id, time=now)


async def match_waiting_credits(
    session: AsyncSession, org_id: UUID, keys: Collection[str], now: datetime
) -> int:
    """Something became known that may explain credits left unmatched: an invoice (its
    ``invoice.sent`` came after its payment was imported, or it was imported from elsewhere
    after the statement; ``keys`` from ``invoice_lookup_keys``), or a payer's account or name
    that a person taught (``payer_lookup_keys``). The organization's unmatched credits that
    carry one of ``keys`` are matched again, against the whole book as an import would
    (never against an invoice a person rejected for them), so that a customer who has paid
    is not reminded. Returns how many found their invoices. Costs one indexed query when no
    credit carries the keys; the book is loaded, and matched in a thread, only when one does."""
    if not keys:
        return 0
    await repo.lock_organization(session, org_id)  # the caller's lock already, usually
    waiting = [
        BankTransaction(**dict(row))
        for row in await repo.waiting_credits(session, org_id, sorted(keys))
    ]
    if not waiting:
        return 0
    rows = (await repo.open_invoices_of(session, org_id), await repo.payers_of(session, org_id))
    excluded = await repo.rejected_invoices(session, org_id, [t.bank_reference for t in waiting])
    writer = await asyncio.to_thread(
        _match_all, waiting, rows, org_id, now, waiting=True, excluded=excluded
    )
    await writer.flush(session)
    for state in ("matched", "suggested"):
        count_on_commit(session, BANK_TRANSACTIONS_FOUND_LATER.labels(state), writer.counts[state])
    if writer.found_at_last:
        log.info(
            "earlier unmatched credits matched at last",
            organization_id=str(org_id),
            matched=writer.counts["matched"],
            suggested=writer.counts["suggested"],
        )
    return len(writer.found_at_last)
