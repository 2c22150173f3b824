"""Amounts: the balance to match against, invoices paid oldest first, and the
combinations of invoices whose balances sum exactly to an amount."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from relance.payment_matcher.matching.values import Allocation, OpenInvoice

MAX_COMBINATION = 5  # invoices in one combination summing to the amount (rules 3 and 4)
SEARCH_BUDGET = 4_000  # steps of one combination search; beyond, it is incomplete


def balance_here(reported: Decimal, unacknowledged: Iterable[Decimal]) -> Decimal:
    """The balance to match against: invoice-api's (``reported``, as of its last event),
    less this service's payments that invoice-api has not acknowledged yet, since its
    balance does not include them. Never below zero."""
    return max(reported - sum(unacknowledged, Decimal(0)), Decimal(0))


def oldest_first(invoices: Iterable[OpenInvoice]) -> list[OpenInvoice]:
    return sorted(invoices, key=lambda i: (i.sent_on, i.due_date, i.number, i.invoice_id.hex))


def allocate_oldest_first(
    invoices: Sequence[OpenInvoice], amount: Decimal
) -> tuple[tuple[Allocation, ...], Decimal]:
    """Pay ``invoices`` (already oldest first) with ``amount``: each in full while the
    money lasts, the last one partly. Returns the allocations and what is left over."""
    allocations: list[Allocation] = []
    left = amount
    for invoice in invoices:
        if left <= 0:
            break
        paid = min(invoice.balance, left)
        allocations.append(Allocation(invoice.invoice_id, paid))
        left -= paid
    return tuple(allocations), left


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(4))


def exact_combinations(
    invoices: Sequence[OpenInvoice],
    amount: Decimal,
    *,
    sizes: range = range(2, MAX_COMBINATION + 1),
    limit: int = 4,
    budget: int = SEARCH_BUDGET,
) -> tuple[list[tuple[OpenInvoice, ...]], bool]:
    """Combinations of ``invoices`` (oldest first) whose balances sum exactly to
    ``amount``: smallest combinations first, then oldest first; at most ``limit``. Also
    says whether the search was complete (False when ``budget`` steps did not suffice)."""
    target = _units(amount)
    pool = [i for i in invoices if 0 < _units(i.balance) <= target]
    values = [_units(i.balance) for i in pool]
    count = len(values)
    where: dict[int, list[int]] = {}
    for position, value in enumerate(values):
        where.setdefault(value, []).append(position)
    suffix_max = [0] * (count + 1)
    suffix_min = [target + 1] * (count + 1)
    for position in range(count - 1, -1, -1):
        suffix_max[position] = max(values[position], suffix_max[position + 1])
        suffix_min[position] = min(values[position], suffix_min[position + 1])
    found: list[tuple[int, ...]] = []
    steps = 0
    complete = True

    def search(start: int, remaining: int, left: int, chosen: tuple[int, ...]) -> bool:
        """True when the search must stop (enough found, or out of budget)."""
        nonlocal steps, complete
        if left == 1:
            for position in where.get(remaining, ()):
                if position >= start:
                    found.append((*chosen, position))
                    if len(found) >= limit:
                        return True
            return False
        for position in range(start, count - left + 1):
            steps += 1
            if steps > budget:
                complete = False
                return True
            rest = remaining - values[position]
            after = position + 1
            if not (left - 1) * suffix_min[after] <= rest <= (left - 1) * suffix_max[after]:
                continue
            if search(position + 1, rest, left - 1, (*chosen, position)):
                return True
        return False

    for size in sizes:
        if size > count or search(0, target, size, ()):
            break
    return [tuple(pool[p] for p in combination) for combination in found], complete


def paid_in_full(invoices: Iterable[OpenInvoice]) -> tuple[Allocation, ...]:
    return tuple(Allocation(i.invoice_id, i.balance) for i in invoices)
