"""Reading what people and banks type: references, IBANs, payers' names, and the invoice
numbers written in a remittance text, turned into the keys the book is indexed by."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from stdnum import iso11649

from relance.payment_matcher.matching.values import Credit

SHORT_NUMBER_DIGITS = 5  # a single group of fewer digits needs a word like "facture"

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
