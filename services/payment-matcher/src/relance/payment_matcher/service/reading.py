"""What the routes show: bank transactions with what they paid and what waits for a person,
and matches with their allocations. Reads only, each a few queries for a whole page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import NotFound
from relance.payment_matcher import repository as repo


@dataclass(frozen=True, slots=True)
class TransactionView:
    """A bank transaction (its row), its matches that pay or wait (best first), and the
    allocations of those that pay."""

    row: Any
    matches: Sequence[Any]
    allocations: dict[UUID, list[Any]]


@dataclass(frozen=True, slots=True)
class MatchView:
    row: Any
    allocations: list[Any]


async def list_transactions(
    session: AsyncSession,
    org_id: UUID,
    state: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[TransactionView]:
    """Newest import first."""
    rows = await repo.list_transactions(session, org_id, state, limit, after)
    return await _transaction_views(session, org_id, rows)


async def get_transaction(
    session: AsyncSession, org_id: UUID, bank_reference: str
) -> TransactionView:
    row = await repo.get_transaction(session, org_id, bank_reference)
    if row is None:
        raise NotFound("bank transaction")
    (found,) = await _transaction_views(session, org_id, [row])
    return found


async def _transaction_views(
    session: AsyncSession, org_id: UUID, rows: Sequence[Any]
) -> list[TransactionView]:
    """The transactions with what they paid and what waits: two queries for the page."""
    found = await repo.matches_of_transactions(
        session, org_id, [row.bank_reference for row in rows], ["matched", "confirmed", "suggested"]
    )
    paying = [m.id for m in found if m.state in ("matched", "confirmed")]
    allocations = await repo.allocations_of(session, paying)
    by_transaction: dict[str, list[Any]] = {}
    for match in found:
        by_transaction.setdefault(match.bank_reference, []).append(match)
    return [
        TransactionView(row, by_transaction.get(row.bank_reference, []), allocations)
        for row in rows
    ]


async def list_matches(
    session: AsyncSession,
    org_id: UUID,
    state: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[MatchView]:
    """Newest first."""
    rows = await repo.list_matches(session, org_id, state, limit, after)
    allocations = await repo.allocations_of(session, [r.id for r in rows])
    return [MatchView(r, allocations[r.id]) for r in rows]


async def get_match(session: AsyncSession, org_id: UUID, match_id: UUID) -> MatchView:
    rows = await repo.list_matches(session, org_id, None, 1, None, match_id=match_id)
    if not rows:
        raise NotFound("match")
    allocations = await repo.allocations_of(session, [match_id])
    return MatchView(rows[0], allocations[match_id])
