"""The open book: the open invoices and known payers of one organization, indexed so that
a credit's references, numbers, IBAN and name find their invoices without comparing all
pairs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import TypeVar
from uuid import UUID

from rapidfuzz import fuzz, process

from relance.payment_matcher.matching.amounts import oldest_first
from relance.payment_matcher.matching.rules import decide
from relance.payment_matcher.matching.text import (
    NumberKey,
    find_number_tokens,
    name_words,
    normalize_iban,
    normalize_reference,
    number_key,
    references_of,
    token_finds,
)
from relance.payment_matcher.matching.values import (
    UNMATCHED,
    Allocation,
    Credit,
    Match,
    OpenInvoice,
    Payer,
)

_K = TypeVar("_K")

NAME_MIN_SCORE = 85.0  # see OpenBook.payer_by_name, 0..100
NAME_MARGIN = 5.0  # over the best score of any other customer
NAME_CANDIDATE_FLOOR = 60.0  # names scoring below this are not counted as runners-up
NAME_RARE_BLOCK = 300  # names filed under a rarer key than this are scored first
NAME_BLOCK_LIMIT = 5_000  # a name key shared by more names than this is too common to use


class OpenBook:
    """The open invoices and known payers of ONE organization, indexed for lookups (dicts
    keyed by normalized reference, by normalized number token, by IBAN; names blocked by
    word beginnings and ends for rapidfuzz): never compare all pairs."""

    def __init__(self, invoices: Iterable[OpenInvoice] = (), payers: Iterable[Payer] = ()) -> None:
        self._invoices: dict[UUID, OpenInvoice] = {}
        self._keys: dict[UUID, NumberKey] = {}
        self._by_reference: defaultdict[str, set[UUID]] = defaultdict(set)
        self._by_groups: defaultdict[tuple[str, ...], set[UUID]] = defaultdict(set)
        self._by_joined: defaultdict[str, set[UUID]] = defaultdict(set)
        self._by_customer: defaultdict[UUID, set[UUID]] = defaultdict(set)
        self._ordered: dict[UUID, list[OpenInvoice]] = {}  # by customer, oldest first
        self._by_iban: defaultdict[str, set[UUID]] = defaultdict(set)
        self._names_plain: list[str] = []  # name words as written, for rapidfuzz
        self._names_sorted: list[str] = []  # the same words sorted
        self._name_owners: list[UUID] = []
        self._name_positions: dict[tuple[UUID, str], int] = {}
        self._name_blocks: defaultdict[str, list[int]] = defaultdict(list)
        for payer in payers:
            for iban in payer.ibans:
                self.learn(payer.customer_id, iban=iban)
            for name in payer.names:
                self.learn(payer.customer_id, name=name)
        for invoice in invoices:
            self.add(invoice)

    def __len__(self) -> int:
        return len(self._invoices)

    def __contains__(self, invoice_id: object) -> bool:
        return invoice_id in self._invoices

    def get(self, invoice_id: UUID) -> OpenInvoice | None:
        return self._invoices.get(invoice_id)

    # keeping the book

    def add(self, invoice: OpenInvoice) -> None:
        """Add an open invoice, or replace the one with the same ``invoice_id``."""
        if invoice.invoice_id in self._invoices:
            self.remove(invoice.invoice_id)
        if invoice.balance <= 0:
            return
        invoice_id = invoice.invoice_id
        self._invoices[invoice_id] = invoice
        self._by_customer[invoice.customer_id].add(invoice_id)
        self._ordered.pop(invoice.customer_id, None)
        if invoice.payment_reference:
            reference = normalize_reference(invoice.payment_reference)
            self._by_reference[reference].add(invoice_id)
        key = number_key(invoice.number)
        if key is not None:
            self._keys[invoice_id] = key
            self._by_groups[key.groups].add(invoice_id)
            if key.joined is not None:
                self._by_joined[key.joined].add(invoice_id)

    def remove(self, invoice_id: UUID) -> None:
        """Forget an invoice (paid, cancelled, handed to collection); unknown ids are fine."""
        invoice = self._invoices.pop(invoice_id, None)
        if invoice is None:
            return
        _discard(self._by_customer, invoice.customer_id, invoice_id)
        self._ordered.pop(invoice.customer_id, None)
        if invoice.payment_reference:
            reference = normalize_reference(invoice.payment_reference)
            _discard(self._by_reference, reference, invoice_id)
        key = self._keys.pop(invoice_id, None)
        if key is not None:
            _discard(self._by_groups, key.groups, invoice_id)
            if key.joined is not None:
                _discard(self._by_joined, key.joined, invoice_id)

    def learn(self, customer_id: UUID, *, iban: str | None = None, name: str | None = None) -> None:
        """Remember an IBAN or a name as the customer's (its own, or learned from a match a
        person confirmed)."""
        if iban:
            self._by_iban[normalize_iban(iban)].add(customer_id)
        if name:
            words = name_words(name)
            key = " ".join(words)
            if key and (customer_id, key) not in self._name_positions:
                position = len(self._names_plain)
                self._names_plain.append(key)
                self._names_sorted.append(" ".join(sorted(words)))
                self._name_owners.append(customer_id)
                self._name_positions[(customer_id, key)] = position
                for block in _name_blocks(key):
                    self._name_blocks[block].append(position)

    def settle(self, allocations: Iterable[Allocation]) -> None:
        """Lower balances by what was recorded; an invoice paid in full leaves the book."""
        for allocation in allocations:
            invoice = self._invoices.get(allocation.invoice_id)
            if invoice is None:
                continue
            balance = invoice.balance - allocation.amount
            if balance <= 0:
                self.remove(invoice.invoice_id)
            else:
                self._invoices[invoice.invoice_id] = replace(invoice, balance=balance)
                self._ordered.pop(invoice.customer_id, None)

    # payers

    def payers_by_iban(self, iban: str | None) -> frozenset[UUID]:
        """The customers who pay from this IBAN (usually one)."""
        if not iban:
            return frozenset()
        return frozenset(self._by_iban.get(normalize_iban(iban), ()))

    def payer_by_name(self, name: str | None) -> tuple[UUID, float] | None:
        """The one customer whose name is close to ``name`` (score ≥ NAME_MIN_SCORE) by
        NAME_MARGIN over any other customer, with its score; else None.

        Only names filed under a key of ``name`` (see ``_name_blocks``) are scored: those
        under its rare keys, or when it has none, under all its keys. The
        score (rapidfuzz's ratio, 0..100) is the best of the words sorted (any order), as
        written, and reversed (``DUPONT JEAN`` for ``Jean Dupont`` even when a typo in a
        first letter upsets the sorting)."""
        if not name:
            return None
        query = name_words(name)
        if not query:
            return None
        blocks = sorted(
            (b for key in _name_blocks(" ".join(query)) if (b := self._name_blocks.get(key))),
            key=len,
        )
        rare = [b for b in blocks if len(b) <= NAME_RARE_BLOCK]
        if rare:
            best = self._score_names(query, rare)
        else:  # only common words ("JEAN", "BOULANGERIE"): every name sharing one
            best = self._score_names(query, [b for b in blocks if len(b) <= NAME_BLOCK_LIMIT])
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
        customer, score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        if score >= NAME_MIN_SCORE and score - runner_up >= NAME_MARGIN:
            return customer, score
        return None

    def _score_names(self, query: list[str], blocks: list[list[int]]) -> dict[UUID, float]:
        """The best score of each customer among the names filed in ``blocks``."""
        positions = sorted({p for block in blocks for p in block})
        in_order = [self._names_plain[p] for p in positions]
        scores = [0.0] * len(positions)
        for written, choices in (
            (" ".join(sorted(query)), [self._names_sorted[p] for p in positions]),
            (" ".join(query), in_order),
            (" ".join(reversed(query)), in_order),
        ):
            for _, score, index in process.extract(
                written,
                choices,
                scorer=fuzz.ratio,
                processor=None,
                score_cutoff=NAME_CANDIDATE_FLOOR,
                limit=None,
            ):
                scores[index] = max(scores[index], score)
        best: dict[UUID, float] = {}
        for position, score in zip(positions, scores, strict=True):
            if score:
                owner = self._name_owners[position]
                best[owner] = max(best.get(owner, 0.0), score)
        return best

    # matching

    def match(self, credit: Credit, *, excluded: Collection[UUID] = ()) -> Match:
        """Which open invoices ``credit`` pays: the rules of ``matching``'s docstring.
        ``excluded``: invoices a person rejected for this transaction, never proposed."""
        if credit.amount <= 0:
            return UNMATCHED
        return decide(self, credit, frozenset(excluded))

    # what the rules read

    def _eligible(
        self, ids: Iterable[UUID], currency: str, excluded: frozenset[UUID]
    ) -> frozenset[UUID]:
        return frozenset(
            i for i in ids if i not in excluded and self._invoices[i].currency.upper() == currency
        )

    def _customer_invoices(
        self, customer_id: UUID, currency: str, excluded: frozenset[UUID]
    ) -> list[OpenInvoice]:
        """The customer's open invoices in ``currency``, oldest first, but ``excluded``."""
        ordered = self._ordered.get(customer_id)
        if ordered is None:
            ids = self._by_customer.get(customer_id, ())
            ordered = self._ordered[customer_id] = oldest_first(self._invoices[i] for i in ids)
        return [
            i for i in ordered if i.currency.upper() == currency and i.invoice_id not in excluded
        ]

    def _find_by_reference(self, credit: Credit) -> tuple[list[frozenset[UUID]], str]:
        """Invoices named by checksum-valid references: one set per reference; and the
        remittance text with those references blanked out (their digits are no numbers)."""
        references, text = references_of(credit)
        readings: list[frozenset[UUID]] = []
        for reference in references:
            ids = self._by_reference.get(reference)
            if ids:
                readings.append(frozenset(ids))
        return readings, text

    def _find_by_number(self, text: str) -> list[frozenset[UUID]]:
        """Invoices named by numbers in ``text``: for each token, the invoices it may name
        (the ones whose leading letters it repeats, when some do)."""
        readings: list[frozenset[UUID]] = []
        seen: set[frozenset[UUID]] = set()
        for token in find_number_tokens(text):
            ids = set(self._by_groups.get(token.groups, ()))
            if len(token.groups) == 1:
                ids.update(self._by_joined.get(token.groups[0], ()))
            named = {i for i in ids if token_finds(token, self._keys[i])}
            if len(named) > 1 and token.letters:
                same_letters = {i for i in named if self._keys[i].letters == token.letters}
                named = same_letters or named
            if named:
                reading = frozenset(named)
                if reading not in seen:
                    seen.add(reading)
                    readings.append(reading)
        return readings


def _discard(index: dict[_K, set[UUID]], key: _K, value: UUID) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


def _name_blocks(key: str) -> set[str]:
    """The keys under which a name is filed: each word's first and last three letters,
    and each word of 4 to 12 letters with and without each of its letters (two words one
    typo apart share one of those: ``DUPONT`` and ``DUPNOT`` share ``DUPOT``)."""
    blocks: set[str] = set()
    for word in key.split():
        blocks.add("<" + word[:3])
        blocks.add(">" + word[-3:])
        if 4 <= len(word) <= 12:
            blocks.add("~" + word)
            blocks.update("~" + word[:i] + word[i + 1 :] for i in range(len(word)))
    return blocks
