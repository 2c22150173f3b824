"""A person's decision on a suggestion: confirmed (the payment is recorded and the payer
learned) or rejected (the pair is never proposed again). Each in one transaction with its
events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Conflict, NotFound
from relance.common.events import Event
from relance.common.events.payment_events import (
    PaymentMatched,
    SuggestionConfirmed,
    SuggestionRejected,
)
from relance.common.outbox import add_events
from relance.payment_matcher import repository as repo
from relance.payment_matcher.matching import (
    normalize_iban,
    payer_lookup_keys,
)
from relance.payment_matcher.service.importing import (
    allocation_match_id,
    match_waiting_credits,
    new_event,
    waiting_keys,
)
from relance.payment_matcher.service.metrics import MATCH_DECISIONS, count_on_commit


class AlreadyDecided(Conflict):
    """The match was confirmed or rejected already."""


async def confirm_match(session: AsyncSession, org_id: UUID, match_id: UUID, now: datetime) -> None:
    """Record the suggested payment as if it had been sure; the other suggestions of the same
    transaction are dismissed, and the payer's account and name are learned."""
    await repo.lock_organization(session, org_id)
    match, transaction = await _suggestion(session, org_id, match_id)
    siblings = [
        row.id
        for row in await repo.matches_of_transactions(
            session, org_id, [match.bank_reference], ["suggested"]
        )
        if row.id != match_id
    ]
    found = await repo.allocations_of(session, [match_id, *siblings])
    allocations = found[match_id]
    await repo.decide_matches(session, org_id, [match_id], "confirmed", now)
    await repo.decide_matches(session, org_id, siblings, "dismissed", now)
    customer_id = match.customer_id
    await repo.update_transaction(session, org_id, match.bank_reference, {"state": "matched"})
    await repo.record_payments(
        session,
        org_id,
        [
            (
                allocation_match_id(match_id, a.invoice_id),
                a.invoice_id,
                match.bank_reference,
                a.amount,
            )
            for a in allocations
        ],
    )
    if customer_id is not None:
        iban = (
            normalize_iban(transaction.counterparty_iban) if transaction.counterparty_iban else None
        )
        await repo.learn_payer(session, org_id, customer_id, iban, transaction.counterparty_name)
        # credits left unmatched that this account or name now explains are matched again
        await match_waiting_credits(
            session, org_id, payer_lookup_keys(iban, transaction.counterparty_name), now
        )
    events: list[Event[Any]] = []
    for allocation in allocations:
        event_match_id = allocation_match_id(match_id, allocation.invoice_id)
        events += [
            new_event(
                SuggestionConfirmed(invoice_id=allocation.invoice_id, match_id=event_match_id),
                org_id,
                now,
            ),
            new_event(
                PaymentMatched(
                    invoice_id=allocation.invoice_id,
                    match_id=event_match_id,
                    bank_reference=transaction.bank_reference,
                    amount=allocation.amount,
                    currency=transaction.currency,
                    booked_on=transaction.booked_on,
                    confirmed_by_person=True,
                ),
                org_id,
                now,
            ),
        ]
    for sibling in siblings:
        events += _rejections(sibling, found[sibling], org_id, now)
    await add_events(session, events)
    count_on_commit(session, MATCH_DECISIONS.labels("confirmed"))


async def reject_match(session: AsyncSession, org_id: UUID, match_id: UUID, now: datetime) -> None:
    """This transaction does not pay these invoices: never propose the pair again, and end
    the hold on their reminders. With no suggestion left, the transaction is unmatched."""
    await repo.lock_organization(session, org_id)
    match, transaction = await _suggestion(session, org_id, match_id)
    allocations = (await repo.allocations_of(session, [match_id]))[match_id]
    await repo.decide_matches(session, org_id, [match_id], "rejected", now)
    await repo.add_rejected_pairs(
        session, org_id, match.bank_reference, [a.invoice_id for a in allocations]
    )
    left = await repo.matches_of_transactions(
        session, org_id, [match.bank_reference], ["suggested"]
    )
    await repo.update_transaction(
        session,
        org_id,
        match.bank_reference,
        {"state": "suggested"}
        if left
        else {"state": "unmatched", "lookup_keys": waiting_keys(transaction)},
    )
    await add_events(session, _rejections(match_id, allocations, org_id, now))
    count_on_commit(session, MATCH_DECISIONS.labels("rejected"))


def _rejections(
    match_id: UUID, allocations: Sequence[Any], org_id: UUID, now: datetime
) -> list[Event[Any]]:
    return [
        new_event(
            SuggestionRejected(
                invoice_id=a.invoice_id, match_id=allocation_match_id(match_id, a.invoice_id)
            ),
            org_id,
            now,
        )
        for a in allocations
    ]


async def _suggestion(session: AsyncSession, org_id: UUID, match_id: UUID) -> tuple[Any, Any]:
    match = await repo.get_match(session, org_id, match_id, lock=True)
    if match is None:
        raise NotFound("match")
    if match.state != "suggested":
        raise AlreadyDecided(f"this match is {match.state}, not waiting for a decision")
    transaction = await repo.get_transaction(session, org_id, match.bank_reference)
    assert transaction is not None  # a match is made with its transaction
    return match, transaction
