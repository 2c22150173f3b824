"""The payment-matcher's own metrics, counted when the transaction commits."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

BANK_TRANSACTIONS = Counter(
    "relance_bank_transactions_total",
    "Bank transactions received, by outcome (matched, suggested, unmatched, debit, duplicate)",
    ["outcome"],
)
MATCH_DECISIONS = Counter(
    "relance_match_decisions_total",
    "Suggestions decided by a person (confirmed, rejected)",
    ["decision"],
)
BANK_TRANSACTIONS_FOUND_LATER = Counter(
    "relance_bank_transactions_found_later_total",
    "Unmatched credits matched or suggested once the invoice they name became known",
    ["outcome"],
)
IMPORT_DURATION = Histogram(
    "relance_bank_import_duration_seconds",
    "Time to import and match one request's bank transactions",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80),
)


def count_on_commit(session: AsyncSession, counter: Any, amount: float = 1) -> None:
    """Add ``amount`` to ``counter`` (a labelled child) once the session's transaction
    commits: a transaction rolled back, or a handler tried again, counts nothing twice."""
    sync = session.sync_session
    pending: list[tuple[Any, float]] | None = sync.info.get(_COUNTS)
    if pending is None:
        pending = sync.info[_COUNTS] = []
        if not sync.info.get(_LISTENING):
            sync.info[_LISTENING] = True
            event.listen(sync, "after_commit", _count_committed)
            event.listen(sync, "after_rollback", _forget_counts)
    pending.append((counter, amount))


_COUNTS = "relance.payment_matcher.counts"
_LISTENING = "relance.payment_matcher.counting"


def _count_committed(session: Session) -> None:
    for counter, amount in session.info.pop(_COUNTS, ()):
        counter.inc(amount)


def _forget_counts(session: Session) -> None:
    session.info.pop(_COUNTS, None)
