"""The matching rules: which open invoices of one organization a bank credit pays.

This module owns the decision, and only the decision: it is pure (no I/O, no clock, no
database). The service loads an organization's open invoices and known payers into an
:class:`OpenBook`, asks :meth:`OpenBook.match` about each credit of an import, records
what the answer says, and calls :meth:`OpenBook.settle` so that the next credit of the same
import sees the balances that are left.

For each credit, only invoices in the credit's currency, with a balance, and not rejected
by a person for this transaction (``excluded``) are considered. The rules, in order:

1. **reference**: a checksum-valid ISO 11649 reference (``RF…``) in the credit's creditor
   reference or in its remittance text, equal (no spaces, upper case) to an invoice's
   payment reference;
2. **number**: invoice numbers found as whole tokens of the remittance text. A number is
   compared by its groups of digits, without leading zeros and whatever separates them
   (``FA-2026-0012``, ``fa20260012`` and ``Fact. 2026/12`` all find ``FA-2026-0012``),
   and a group of digits is never a part of a longer one (``FA-2026-00123`` and
   ``120260012`` do not find it). Several numbers: one transfer paying several invoices;
3. **iban**: a counterparty IBAN known for exactly one customer, then that customer's only
   invoice with exactly the amount, or else its only combination of 2 to 5 invoices
   summing exactly to it (searched oldest first, with a bound on the work);
4. **name**: the counterparty name close (rapidfuzz) to one customer's name, by a margin
   over the next customer; then the amounts as in rule 3, but never matched automatically;
5. otherwise: unmatched.

An amount below the balances found is a partial payment, allocated oldest first; an amount
above them leaves an excess, kept as credit on the customer (:attr:`Match.excess`).

**Consistent amount.** With reference or number evidence, the credit is *matched* when its
amount is consistent with the invoices found:

- it equals their total (paid in full);
- it is below their total (a partial payment: bank fees deducted, or an instalment): the
  one combination of the found invoices that sums exactly to the amount is paid, or else
  they are paid oldest first, the last one partly (two combinations that fit equally are
  ambiguous);
- it is above their total by at most 5 % of it (:data:`EXCESS_TOLERANCE`): all are paid,
  the rest is the excess.

With a reference, that is all. With a number, an amount other than the exact balances of
the invoices it pays also needs the payer recognized as that customer (its IBAN known for
it, or its name close to it): an unrelated number in the text (a month, a supplier's own
invoice number in a refund) with an amount near the balance would otherwise record a
payment.

A larger excess is only suggested (with, when some exist, the customer's other invoices
that make up the difference exactly). Number evidence is also only suggested when the
counterparty IBAN is known for another customer, or for a customer with exactly one other
invoice of exactly the amount while the numbers found do not add up to it (a mistyped
number), when a number finds invoices of several customers that neither the IBAN nor the
name tells apart (a name that tells them apart makes a suggestion, not a match), or when
one number finds several invoices. IBAN evidence is matched only with an exact and
unambiguous amount: one invoice and no combination, or no invoice and one combination,
the search complete. An earlier rule that found something makes a later rule's sure
answer a suggestion. Every other credit with a candidate is *suggested*: up to three
candidates, best first, each with a confidence in 0..1 (see the ``CONFIDENCE_*``
constants). An unmatched credit names the customer when its IBAN is known for exactly one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal, NamedTuple, TypeVar
from uuid import UUID

from rapidfuzz import fuzz, process
from stdnum import iso11649

Evidence = Literal["reference", "number", "iban", "name"]
MatchState = Literal["matched", "suggested", "unmatched"]
_K = TypeVar("_K")

MAX_CANDIDATES = 3  # suggestions shown to a person
MAX_COMBINATION = 5  # invoices in one combination summing to the amount (rules 3 and 4)
SEARCH_BUDGET = 4_000  # steps of one combination search; beyond, it is incomplete
EXCESS_TOLERANCE = Decimal("0.05")  # an excess up to 5 % of the total found stays matched
FEE_ABSOLUTE = Decimal("15")  # below a balance by this much (or FEE_RELATIVE): bank fees
FEE_RELATIVE = Decimal("0.02")
NAME_MIN_SCORE = 85.0  # see OpenBook.payer_by_name, 0..100
NAME_MARGIN = 5.0  # over the best score of any other customer
NAME_CANDIDATE_FLOOR = 60.0  # names scoring below this are not counted as runners-up
NAME_RARE_BLOCK = 300  # names filed under a rarer key than this are scored first
NAME_BLOCK_LIMIT = 5_000  # a name key shared by more names than this is too common to use
SHORT_NUMBER_DIGITS = 5  # a single group of fewer digits needs a word like "facture"

CONFIDENCE_REFERENCE = 0.99
CONFIDENCE_NUMBER = 0.95
CONFIDENCE_IBAN_EXACT = 0.9
CONFIDENCE_IBAN_COMBINATION = 0.85
CONFIDENCE_LARGE_EXCESS = 0.7  # reference or number found, far more money than their total
CONFIDENCE_PAYER_CONFLICT = 0.7  # number found, but the IBAN is another customer's
CONFIDENCE_UNCONFIRMED = 0.7  # number found, amount not exact, the payer not recognized
CONFIDENCE_SETTLED_BY_NAME = 0.75  # number of several customers, the name tells which
CONFIDENCE_OVERRULED = 0.65  # a later rule's sure answer, after an earlier rule found others
CONFIDENCE_AMBIGUOUS = 0.5  # several invoices or customers fit the same evidence
CONFIDENCE_EXACT_AMONG_SEVERAL = 0.6  # one of several exact amounts of an identified payer
CONFIDENCE_FEES = 0.45  # an identified payer's invoice, a little more than the amount
CONFIDENCE_OLDEST_FIRST = 0.3  # an identified payer's invoices, oldest first
NAME_WEIGHT = 0.8  # rule 4's confidence: rule 3's, times this, times score / 100

# words before a number that say "invoice", in the languages the product serves
_NUMBER_WORDS = (
    "F FA FAC FACT FACTURE FACTURES FCT FT FACTURA FATTURA FACTUUR INV INVOICE "
    "INVOICES RE RG RECHNUNG RECH N NO NR NUM NUMERO REF"
)
NUMBER_WORDS = frozenset(_NUMBER_WORDS.split())
# words of a payer's name that say nothing about who it is
_NAME_NOISE = (
    "SA SAS SASU SARL EURL SNC SCI SCP SELARL EI EIRL STE SOCIETE ETS ETABLISSEMENTS "
    "GMBH AG KG UG LTD LIMITED PLC LLC INC CORP BV NV SPRL SRL SPA SL CO M MR MRS MS "
    "MME MLLE MONSIEUR MADAME DR OU ET AND LES LE LA DE DU DES THE"
)
NAME_NOISE = frozenset(_NAME_NOISE.split())


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


# -- normalizing what people and banks type ----------------------------------------------


def normalize_reference(reference: str) -> str:
    """``"rf18 5390 0754 7034"`` → ``"RF18539007547034"``: no spaces, upper case."""
    return "".join(reference.split()).upper()


def normalize_iban(iban: str) -> str:
    """``"fr76 3000 6000 …"`` → ``"FR763000600…"``: letters and digits only, upper case."""
    return re.sub(r"[^0-9A-Za-z]", "", iban).upper()


def name_words(name: str) -> list[str]:
    """The words of a payer's name that tell who it is: no accents, case, punctuation,
    legal form or title (``"M. Jean DUPONT SARL"`` → ``["JEAN", "DUPONT"]``)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^0-9A-Z]+", plain.upper()) if w and w not in NAME_NOISE]


def name_key(name: str) -> str:
    """A payer's name as compared, its words sorted (``"M. Jean DUPONT"`` and ``"Dupont,
    Jean"`` are both ``"DUPONT JEAN"``)."""
    return " ".join(sorted(name_words(name)))


_RF_START = re.compile(r"(?<![0-9A-Za-z])RF\d\d", re.IGNORECASE)
_RF_PART = re.compile(r" ?(?:[0-9]+|[A-Za-z]+)")  # a reading may end where letters meet digits
_RF_MAX_LENGTH = 25


def find_references(text: str) -> list[tuple[str, int, int]]:
    """The checksum-valid ISO 11649 references written in ``text``, grouped in fours or
    not, or glued to a word (``RF18539007547034FACTURE``): ``(normalized reference, start,
    end)``. When several readings of the same place are valid (``RF18 5390 0754 7034
    1234``), all are returned, longest first."""
    found: list[tuple[str, int, int]] = []
    for start in _RF_START.finditer(text):
        compact = start.group().upper()
        end = start.end()
        readings: list[tuple[str, int]] = []
        while True:
            part = _RF_PART.match(text, end)
            if part is None:
                break
            compact += part.group().strip().upper()
            if len(compact) > _RF_MAX_LENGTH:
                break
            end = part.end()
            readings.append((compact, end))
        found.extend(
            (reading, start.start(), stop)
            for reading, stop in reversed(readings)
            if iso11649.is_valid(reading)
        )
    return found


def references_of(credit: Credit) -> tuple[list[str], str]:
    """The checksum-valid references a credit quotes (its creditor reference first), once
    each; and its remittance text with them blanked out (their digits are no numbers)."""
    references: list[str] = []
    if credit.creditor_reference:
        compact = normalize_reference(credit.creditor_reference)
        if iso11649.is_valid(compact):
            references.append(compact)
    text = credit.remittance_info or ""
    for reference, start, end in find_references(text):
        references.append(reference)
        text = text[:start] + " " * (end - start) + text[end:]
    return list(dict.fromkeys(references)), text


def credit_lookup_keys(credit: Credit) -> set[str]:
    """What an invoice must have for rules 1 and 2 to find it from this credit: the
    references it quotes (``ref:…``) and the digit groups of each number token of its text
    (``num:2026-12``); and who paid it (:func:`payer_lookup_keys`). An unmatched credit
    keeps them, so that an invoice known later (:func:`invoice_lookup_keys`), or a payer
    learned later, is looked for only among the credits that may name it."""
    references, text = references_of(credit)
    keys = {f"ref:{reference}" for reference in references}
    keys.update(f"num:{'-'.join(token.groups)}" for token in find_number_tokens(text))
    return keys | payer_lookup_keys(credit.counterparty_iban, credit.counterparty_name)


def payer_lookup_keys(iban: str | None, name: str | None) -> set[str]:
    """The keys of a payer's account (``iban:FR76…``) and name (``name:DUPONT JEAN``): the
    credits that carry them are tried again when a person teaches them (rules 3 and 4)."""
    keys = set()
    if iban and (account := normalize_iban(iban)):
        keys.add(f"iban:{account}")
    if name and (words := name_key(name)):
        keys.add(f"name:{words}")
    return keys


def invoice_lookup_keys(number: str, payment_reference: str | None) -> set[str]:
    """The keys of :func:`credit_lookup_keys` that may name this invoice: a credit whose
    keys share none with these cannot find it by reference or number."""
    keys = set()
    if payment_reference:
        keys.add(f"ref:{normalize_reference(payment_reference)}")
    key = number_key(number)
    if key is not None:
        keys.add(f"num:{'-'.join(key.groups)}")
        if key.joined is not None:
            keys.add(f"num:{key.joined}")
    return keys


_DIGITS = re.compile(r"\d+")
_NOT_LETTERS = re.compile(r"[^A-Za-z]")


class NumberKey(NamedTuple):
    """How an invoice number is looked up: its groups of digits without leading zeros,
    the digits run together (when there are several groups), its leading letters."""

    groups: tuple[str, ...]
    raw: tuple[str, ...]
    joined: str | None
    letters: str


def number_key(number: str) -> NumberKey | None:
    """``"FA-2026-0012"`` → groups ``("2026", "12")``, joined ``"20260012"``, letters
    ``"FA"``. None for a number without digits (it can only be found by reference)."""
    raw = tuple(_DIGITS.findall(number))
    if not raw:
        return None
    groups = tuple([g.lstrip("0") or "0" for g in raw])
    joined = ("".join(raw).lstrip("0") or "0") if len(raw) > 1 else None
    leading = number[: number.index(raw[0][0])]
    letters = _NOT_LETTERS.sub("", leading).upper() if leading else ""
    return NumberKey(groups, raw, joined, letters)


@dataclass(frozen=True, slots=True)
class NumberToken:
    """A run of digit groups in a remittance text (``2026/12``), with the word or letters
    just before it (``FACT``) and whether those letters are glued to it (``FA-2026``)."""

    groups: tuple[str, ...]
    raw: tuple[str, ...]
    letters: str
    glued: bool


_CHAIN = re.compile(r"\d+(?:[-/._\\]\d+)*")
_CHAIN_SEPARATOR = re.compile(r"[-/._\\]")
_LETTERS_BEFORE = re.compile(r"([A-Za-z]+)([^0-9A-Za-z]{0,2})$")
_DECIMALS_AFTER = re.compile(r",\d\d(?!\d)")
_CURRENCY_AFTER = re.compile(r" ?(?:EUR|USD|GBP|CHF|€|\$|£)(?![A-Za-z])", re.IGNORECASE)


def find_number_tokens(text: str) -> list[NumberToken]:
    """Every whole run of digit groups in ``text`` that may be an invoice number: groups
    joined by one of ``- / . _ \\``, never part of a longer run, and not an amount
    (``1250,00`` or ``300 EUR``)."""
    tokens: list[NumberToken] = []
    for chain in _CHAIN.finditer(text):
        end = chain.end()
        if _DECIMALS_AFTER.match(text, end) or _CURRENCY_AFTER.match(text, end):
            continue
        raw = tuple(_CHAIN_SEPARATOR.split(chain.group()))
        before = _LETTERS_BEFORE.search(text, max(0, chain.start() - 24), chain.start())
        letters, glued = "", False
        if before is not None:
            letters = before.group(1).upper()
            glued = not any(c.isspace() for c in before.group(2))
        tokens.append(NumberToken(tuple(g.lstrip("0") or "0" for g in raw), raw, letters, glued))
    return tokens


def _looks_like_a_date(raw: tuple[str, ...]) -> bool:
    if len(raw) != 3:
        return False
    lengths = tuple(len(g) for g in raw)
    values = tuple(int(g) for g in raw)
    if lengths == (4, 2, 2):
        return 1 <= values[1] <= 12 and 1 <= values[2] <= 31
    if lengths in ((2, 2, 4), (2, 2, 2), (1, 2, 4), (2, 1, 4), (1, 1, 4)):
        return 1 <= values[0] <= 31 and 1 <= values[1] <= 12
    return False


def token_finds(token: NumberToken, key: NumberKey) -> bool:
    """Whether a token of a remittance text names the invoice whose number has ``key``
    (once the dictionaries have said the digits agree)."""
    glued_letters = token.letters if token.glued else ""
    if glued_letters and glued_letters != key.letters and glued_letters not in NUMBER_WORDS:
        return False  # another series or kind of document: "AV-2026-0012", "PO2026-12"
    if token.groups == key.groups and len(token.raw) == 1:
        short = len(token.raw[0]) < SHORT_NUMBER_DIGITS
        if short and not (
            (key.letters and token.letters == key.letters) or token.letters in NUMBER_WORDS
        ):
            return False  # "42" alone is more likely a quantity than invoice INV-00042
    return not (_looks_like_a_date(token.raw) and token.raw != key.raw)


# -- amounts ------------------------------------------------------------------------------


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


def _full(invoices: Iterable[OpenInvoice]) -> tuple[Allocation, ...]:
    return tuple(Allocation(i.invoice_id, i.balance) for i in invoices)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How an amount pays invoices that evidence found (all of one customer)."""

    allocations: tuple[Allocation, ...]
    excess: Decimal
    consistent: bool
    alternatives: tuple[tuple[Allocation, ...], ...] = ()  # when ambiguous, each reading
    total: Decimal = Decimal(0)  # the balances of the invoices found


def _plan(found: Sequence[OpenInvoice], amount: Decimal) -> _Plan:
    """Pay the invoices found (oldest first) with ``amount`` and say whether the amount
    is consistent with them (the module's docstring says what that means)."""
    total = sum((i.balance for i in found), Decimal(0))
    if amount == total:
        return _Plan(_full(found), Decimal(0), consistent=True, total=total)
    if amount > total:
        excess = amount - total
        consistent = excess <= total * EXCESS_TOLERANCE
        return _Plan(_full(found), excess, consistent, total=total)
    if len(found) > 1:
        fits, complete = exact_combinations(found, amount, sizes=range(1, len(found)))
        if len(fits) == 1 and complete:
            return _Plan(_full(oldest_first(fits[0])), Decimal(0), consistent=True, total=total)
        if len(fits) > 1:
            readings = tuple(_full(oldest_first(f)) for f in fits)
            return _Plan(readings[0], Decimal(0), False, alternatives=readings, total=total)
    allocations, _ = allocate_oldest_first(found, amount)
    return _Plan(allocations, Decimal(0), consistent=True, total=total)


# -- the book -----------------------------------------------------------------------------


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
        """Which open invoices ``credit`` pays: the rules of this module's docstring.
        ``excluded``: invoices a person rejected for this transaction, never proposed."""
        if credit.amount <= 0:
            return UNMATCHED
        return _Matching(self, credit, frozenset(excluded)).run()

    # what _Matching reads

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


class _Matching:
    """One credit going through the rules (a helper of :meth:`OpenBook.match`)."""

    def __init__(self, book: OpenBook, credit: Credit, excluded: frozenset[UUID]) -> None:
        self.book = book
        self.credit = credit
        self.amount = credit.amount
        self.currency = credit.currency.upper()
        self.excluded = excluded
        self.iban_payers = book.payers_by_iban(credit.counterparty_iban)
        self._name_payer: tuple[UUID, float] | None = None
        self._name_done = False
        self.suggestions: list[tuple[Candidate, UUID]] = []

    @property
    def iban_payer(self) -> UUID | None:
        return next(iter(self.iban_payers)) if len(self.iban_payers) == 1 else None

    @property
    def name_payer(self) -> tuple[UUID, float] | None:
        if not self._name_done:
            self._name_done = True
            self._name_payer = self.book.payer_by_name(self.credit.counterparty_name)
        return self._name_payer

    def invoice(self, invoice_id: UUID) -> OpenInvoice:
        return self.book._invoices[invoice_id]

    def suggest(
        self,
        customer: UUID,
        allocations: tuple[Allocation, ...],
        confidence: float,
        evidence: Evidence,
    ) -> None:
        if allocations:
            self.suggestions.append((Candidate(allocations, confidence, evidence), customer))

    def run(self) -> Match:
        """Each rule in turn: the first that is sure answers "matched", unless an earlier
        rule found something else (then it is one more suggestion)."""
        by_reference, text = self.book._find_by_reference(self.credit)
        stages: tuple[tuple[Evidence, list[frozenset[UUID]]], ...] = (
            ("reference", by_reference),
            ("number", self.book._find_by_number(text)),
        )
        for evidence, readings in stages:
            found = [
                eligible
                for reading in readings
                if (eligible := self.book._eligible(reading, self.currency, self.excluded))
            ]
            if found:
                matched = self.settle_or_suggest(self.judge_found(evidence, found))
                if matched is not None:
                    return matched
        matched = self.settle_or_suggest(self.by_payer())
        return matched if matched is not None else self.answer()

    def settle_or_suggest(self, matched: Match | None) -> Match | None:
        """A sure match stands only if no earlier rule pointed elsewhere."""
        if matched is None or not self.suggestions:
            return matched
        assert matched.customer_id is not None
        candidate = matched.candidates[0]
        confidence = min(candidate.confidence, CONFIDENCE_OVERRULED)
        self.suggestions.append((replace(candidate, confidence=confidence), matched.customer_id))
        return None

    def judge_found(self, evidence: Evidence, readings: list[frozenset[UUID]]) -> Match | None:
        """Rules 1 and 2: the invoices found by references or numbers. A Match when the
        evidence is enough to record a payment, else suggestions."""
        customers = {self.invoice(i).customer_id for r in readings for i in r}
        settled_by_name = False
        if len(customers) > 1:
            payer = self.iban_payer
            if payer is None or payer not in customers:
                named = self.name_payer
                payer = named[0] if named is not None and named[0] in customers else None
                settled_by_name = payer is not None
            if payer is None:
                self.suggest_each_customer(readings, evidence)
                return None
            readings = [
                kept
                for r in readings
                if (kept := frozenset(i for i in r if self.invoice(i).customer_id == payer))
            ]
            customers = {payer}
        (customer,) = customers
        ambiguous_token = any(len(r) > 1 for r in readings)
        invoices = oldest_first(self.invoice(i) for i in frozenset().union(*readings))
        plan = _plan(invoices, self.amount)
        confidence = CONFIDENCE_REFERENCE if evidence == "reference" else CONFIDENCE_NUMBER
        conflict = (
            evidence == "number" and bool(self.iban_payers) and customer not in self.iban_payers
        )
        if evidence == "number" and not conflict and plan.total != self.amount:
            conflict = self.exact_elsewhere(invoices)
        if plan.alternatives:
            for alternative in plan.alternatives:
                self.suggest(customer, alternative, CONFIDENCE_AMBIGUOUS, evidence)
            return None
        unconfirmed = (
            evidence == "number"
            and plan.consistent
            and self.amount != self.balances(plan.allocations)
            and not self.payer_agrees(customer)
        )
        if plan.consistent and not (ambiguous_token or settled_by_name or conflict or unconfirmed):
            candidate = Candidate(plan.allocations, confidence, evidence)
            return Match("matched", customer, (candidate,), plan.excess)
        if unconfirmed:
            confidence = CONFIDENCE_UNCONFIRMED
        if ambiguous_token:
            confidence = CONFIDENCE_AMBIGUOUS
        elif settled_by_name:
            confidence = CONFIDENCE_SETTLED_BY_NAME
        elif conflict:
            confidence = CONFIDENCE_PAYER_CONFLICT
        if not plan.consistent:  # a large excess: maybe other invoices make it up
            confidence = min(confidence, CONFIDENCE_LARGE_EXCESS)
            others = [
                i
                for i in self.book._customer_invoices(customer, self.currency, self.excluded)
                if all(i.invoice_id != a.invoice_id for a in plan.allocations)
            ]
            extra, _ = exact_combinations(others, plan.excess, sizes=range(1, 4), limit=1)
            if extra:
                allocations = _full(oldest_first([*invoices, *extra[0]]))
                self.suggest(customer, allocations, confidence + 0.05, evidence)
        if ambiguous_token:  # each reading of the ambiguous numbers on its own
            for reading in readings:
                if len(reading) > 1:
                    for invoice_id in sorted(reading, key=lambda i: i.hex):
                        single = _plan([self.invoice(invoice_id)], self.amount)
                        self.suggest(customer, single.allocations, confidence, evidence)
        self.suggest(customer, plan.allocations, confidence, evidence)
        return None

    def balances(self, allocations: tuple[Allocation, ...]) -> Decimal:
        """The balances of the invoices the allocations pay (in full or in part)."""
        return sum((self.invoice(a.invoice_id).balance for a in allocations), Decimal(0))

    def payer_agrees(self, customer: UUID) -> bool:
        """Whether the IBAN or the name says the credit comes from ``customer``."""
        if customer in self.iban_payers:
            return True
        named = self.name_payer
        return named is not None and named[0] == customer

    def exact_elsewhere(self, found: Sequence[OpenInvoice]) -> bool:
        """Whether the payer known by IBAN has one other invoice of exactly the amount, when
        the numbers found do not add up to it (a mistyped number, likely): suggested."""
        payer = self.iban_payer
        if payer is None:
            return False
        ids = {i.invoice_id for i in found}
        exact = [
            i
            for i in self.book._customer_invoices(payer, self.currency, self.excluded)
            if i.balance == self.amount and i.invoice_id not in ids
        ]
        if len(exact) != 1:
            return False
        self.suggest(payer, _full(exact), CONFIDENCE_PAYER_CONFLICT - 0.05, "iban")
        return True

    def suggest_each_customer(self, readings: list[frozenset[UUID]], evidence: Evidence) -> None:
        """Numbers or references of several customers: each customer's invoices, the
        customer of the oldest invoice first."""
        by_customer: dict[UUID, list[OpenInvoice]] = {}
        for invoice in oldest_first(self.invoice(i) for i in {i for r in readings for i in r}):
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
        for customer, invoices in by_customer.items():
            plan = _plan(invoices, self.amount)
            exact = plan.consistent and plan.excess == 0
            confidence = CONFIDENCE_AMBIGUOUS + (0.05 if exact else 0.0)
            self.suggest(customer, plan.allocations, confidence, evidence)

    def by_payer(self) -> Match | None:
        """Rules 3 and 4: a payer known by IBAN, else by name, then the amounts."""
        payer = self.iban_payer
        if payer is not None:
            matched = self.by_amount(payer, "iban", 1.0)
            if matched is not None:
                return matched
            if any(customer == payer for _, customer in self.suggestions):
                return None
        named = self.name_payer
        if named is not None and named[0] != payer:
            self.by_amount(named[0], "name", NAME_WEIGHT * named[1] / 100.0)
        return None

    def by_amount(self, customer: UUID, evidence: Evidence, weight: float) -> Match | None:
        invoices = self.book._customer_invoices(customer, self.currency, self.excluded)
        if not invoices:
            return None
        singles = [i for i in invoices if i.balance == self.amount]
        combinations: list[tuple[OpenInvoice, ...]] = []
        complete = True
        if len(singles) < MAX_CANDIDATES:  # else ambiguous already, and no room to show more
            combinations, complete = exact_combinations(invoices, self.amount)
        if evidence == "iban" and complete and len(singles) + len(combinations) == 1:
            if singles:
                candidate = Candidate(_full(singles), CONFIDENCE_IBAN_EXACT, evidence)
            else:
                allocations = _full(combinations[0])
                candidate = Candidate(allocations, CONFIDENCE_IBAN_COMBINATION, evidence)
            return Match("matched", customer, (candidate,), Decimal(0))
        if singles or combinations:
            alone = len(singles) + len(combinations) == 1 and complete
            for invoice in singles:
                confidence = CONFIDENCE_IBAN_EXACT if alone else CONFIDENCE_EXACT_AMONG_SEVERAL
                self.suggest(customer, _full([invoice]), weight * confidence, evidence)
            for combination in combinations:
                confidence = (
                    CONFIDENCE_IBAN_COMBINATION if alone else CONFIDENCE_EXACT_AMONG_SEVERAL - 0.05
                )
                self.suggest(customer, _full(combination), weight * confidence, evidence)
            return None
        near = [
            i
            for i in invoices
            if self.amount < i.balance <= self.amount + max(FEE_ABSOLUTE, i.balance * FEE_RELATIVE)
        ]
        near.sort(key=lambda i: i.balance - self.amount)
        for invoice in near[:2]:
            allocation = (Allocation(invoice.invoice_id, self.amount),)
            self.suggest(customer, allocation, weight * CONFIDENCE_FEES, evidence)
        allocations, _ = allocate_oldest_first(invoices, self.amount)
        self.suggest(customer, allocations, weight * CONFIDENCE_OLDEST_FIRST, evidence)
        return None

    def answer(self) -> Match:
        if not self.suggestions:
            return Match("unmatched", self.iban_payer, (), Decimal(0))
        ranked = sorted(
            enumerate(self.suggestions), key=lambda item: (-item[1][0].confidence, item[0])
        )
        chosen: list[tuple[Candidate, UUID]] = []
        seen: set[tuple[Allocation, ...]] = set()
        for _, (candidate, customer) in ranked:
            key = tuple(sorted(candidate.allocations, key=lambda a: a.invoice_id.hex))
            if key in seen:
                continue
            seen.add(key)
            chosen.append((candidate, customer))
            if len(chosen) == MAX_CANDIDATES:
                break
        customers = {customer for _, customer in chosen}
        customer_id = next(iter(customers)) if len(customers) == 1 else None
        return Match("suggested", customer_id, tuple(c for c, _ in chosen), Decimal(0))
