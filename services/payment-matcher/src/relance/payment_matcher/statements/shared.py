"""What every statement format shares: the transaction read, the error that says where a
file stops reading, amounts checked against the currency, text decoded and checked for what
the database cannot store, and how ``bank_reference`` is chosen or derived (the package's
docstring says how)."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from relance.common.logging import get_logger
from relance.common.money import MAX_AMOUNT, quantize
from relance.common.textguard import first_unstorable

log = get_logger(__name__)


PROGRESS_EVERY = 10_000
DERIVED_PREFIX = "derived-"
CURRENCY_RE = re.compile(r"[A-Z]{3}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


@dataclass(frozen=True, slots=True)
class BankTransaction:
    """One booked movement on a bank account, as read from a statement file."""

    bank_reference: str
    booked_on: date
    amount: Decimal
    currency: str
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    remittance_info: str | None = None
    creditor_reference: str | None = None


class StatementError(ValueError):
    """The file cannot be read as a bank statement; ``where`` says where in the file."""

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(slots=True)
class Draft:
    booked_on: date
    amount: Decimal
    currency: str
    reference: str | None = None
    account: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    remittance_info: str | None = None
    creditor_reference: str | None = None


def finish(drafts: Iterable[Draft], default_account: str | None) -> list[BankTransaction]:
    transactions: list[BankTransaction] = []
    occurrences: dict[bytes, int] = {}
    # The values of each transaction that has the bank's reference, by reference: a reference
    # met again with other values is not unique in this file (see _disambiguate).
    by_reference: dict[str, bytes] = {}
    fingerprints: list[bytes | None] = []
    reused: set[str] = set()
    for number, draft in enumerate(drafts, start=1):
        _check_storable(draft, number)
        key = json.dumps(
            [
                draft.account or default_account or "",
                draft.booked_on.isoformat(),
                str(draft.amount),
                draft.currency,
                draft.counterparty_name or "",
                draft.counterparty_iban or "",
                draft.remittance_info or "",
                draft.creditor_reference or "",
            ],
            ensure_ascii=False,
        )
        # Only a digest of the values is kept per transaction.
        fingerprint = hashlib.sha256(key.encode()).digest()
        reference = draft.reference
        if reference is None:
            seen = occurrences.get(fingerprint, 0)
            occurrences[fingerprint] = seen + 1
            reference = DERIVED_PREFIX + hashlib.sha256(f"{key}#{seen}".encode()).hexdigest()[:32]
            fingerprints.append(None)
        else:
            if by_reference.setdefault(reference, fingerprint) != fingerprint:
                reused.add(reference)
            fingerprints.append(fingerprint)
        transactions.append(
            BankTransaction(
                bank_reference=reference,
                booked_on=draft.booked_on,
                amount=draft.amount,
                currency=draft.currency,
                counterparty_name=draft.counterparty_name,
                counterparty_iban=draft.counterparty_iban,
                remittance_info=draft.remittance_info,
                creditor_reference=draft.creditor_reference,
            )
        )
        if len(transactions) % PROGRESS_EVERY == 0:
            log.info("statement parsing", transactions=len(transactions))
    if reused:
        _disambiguate(transactions, fingerprints, reused)
    return transactions


_TEXT_FIELDS = (
    "reference",
    "account",
    "currency",
    "counterparty_name",
    "counterparty_iban",
    "remittance_info",
    "creditor_reference",
)


def _check_storable(draft: Draft, number: int) -> None:
    """Every format's last check: no text PostgreSQL cannot store (NUL, a lone surrogate)
    goes on, whatever the parser let through (the readers of decoded text say the line)."""
    for name in _TEXT_FIELDS:
        value = getattr(draft, name)
        found = first_unstorable(value) if value is not None else None
        if found is not None:
            raise StatementError(
                f"the {name.replace('_', ' ')} holds {found[1]}", f"transaction {number}"
            )


def _disambiguate(
    transactions: list[BankTransaction], fingerprints: list[bytes | None], reused: set[str]
) -> None:
    """Give a derived reference to every transaction whose bank reference the file also gives
    to a different transaction, so that none is taken for a duplicate of another.

    The same reference with the same values keeps one derived reference: it is the same
    transaction listed twice (overlapping statements) and is imported once. The derived
    reference hashes the bank's reference and the values, so it is stable across re-imports.
    """
    log.warning("bank references reused in one statement", references=len(reused))
    for index, transaction in enumerate(transactions):
        fingerprint = fingerprints[index]
        if transaction.bank_reference not in reused or fingerprint is None:
            continue
        material = f"{transaction.bank_reference}\x1f{fingerprint.hex()}"
        transactions[index] = dataclasses.replace(
            transaction,
            bank_reference=DERIVED_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:32],
        )


def exact_amount(value: Decimal, currency: str, where: str) -> Decimal:
    """``value`` with exactly the currency's minor units, or StatementError."""
    if not CURRENCY_RE.fullmatch(currency):
        raise StatementError(f"currency {currency!r} is not an ISO 4217 code", where)
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise StatementError(f"amount {value} is out of range", where)
    try:
        exact = quantize(value, currency)
    except InvalidOperation:
        raise StatementError(f"amount {value} is out of range", where) from None
    if exact != value:
        raise StatementError(f"amount {value} has more decimals than {currency} allows", where)
    return exact


def clean(text: str | None) -> str | None:
    """Whitespace runs (line breaks included) become one space; empty becomes None."""
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


def normalize_account(value: str | None) -> str | None:
    if value is None:
        return None
    normalized = "".join(value.split()).upper()
    return normalized or None


def as_iban(value: str | None) -> str | None:
    """An IBAN without spaces in upper case, or None when the value is not shaped like one."""
    normalized = normalize_account(value)
    if normalized is None or not _IBAN_RE.fullmatch(normalized):
        return None
    return normalized


def encoding_of(content: bytes, encoding: str | None = None) -> str:
    """The given encoding if the content is valid in it, else UTF-8, Windows-1252 or Latin-1."""
    if encoding is not None:
        try:
            content.decode(encoding)
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            raise StatementError(f"the file is not valid {encoding}", f"line {line}") from None
        return encoding
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export. "utf-16" reads the byte order mark and drops it.
        return encoding_of(content, "utf-16")
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            content.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate
    return "latin-1"


def decode_text(content: bytes, encoding: str | None = None) -> str:
    text = content.decode(encoding_of(content, encoding))
    found = first_unstorable(text)
    if found is not None:
        line = text.count("\n", 0, found[0]) + 1
        raise StatementError(
            f"the file holds {found[1]}: it is not a text statement", f"line {line}"
        )
    return text
