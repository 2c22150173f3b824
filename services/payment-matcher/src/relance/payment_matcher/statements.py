"""Bank statement files turned into bank transactions: bytes in, ``BankTransaction`` list out.

This module owns reading the statement files a user uploads (CAMT.053 XML, MT940, OFX 1.x
SGML and 2.x XML, and CSV with a column mapping). It does no I/O: it gets the file's bytes
and answers every transaction in it, or raises ``StatementError`` saying what is wrong and
where. It is all or nothing: a malformed or truncated file never yields part of its
transactions.

Formats (``detect_format`` looks at the content, never at the file name):

- **CAMT.053** (ISO 20022 ``BkToCstmrStmt``, versions camt.053.001.02 to .13): each booked
  ``Ntry`` is a transaction, or each ``TxDtls`` of a batched entry. Entries whose status is
  not ``BOOK`` (pending, information only) are left out. The sign comes from
  ``CdtDbtInd``; the counterparty is the debtor of a credit and the creditor of a debit.
  The file is read entry by entry, so a large file does not sit in memory as a tree.
- **MT940**: each ``:61:`` line with its ``:86:`` details. Each statement must end with its
  closing balance (``:62F:``/``:62M:``) and opening balance plus the lines must equal it,
  which is how a truncated or corrupted file is caught.
- **OFX**: each ``STMTTRN`` of the bank and credit card statements.
- **CSV**: one transaction per row, columns named by a ``CsvMapping``.

How ``bank_reference`` is chosen (it must be stable across re-imports of the same file):

- CAMT.053: the transaction's ``Refs/AcctSvcrRef``, else the entry's ``AcctSvcrRef``, else
  the entry's ``NtryRef`` qualified as ``<account IBAN>/<booking date YYYYMMDD>/<NtryRef>``
  (many banks number the entries of each statement from 1). When the ``TxDtls`` of a
  batched entry do not each have their own reference (none, or one repeated), each gets the
  entry's reference followed by ``/<position in the entry>``.
- MT940: the bank reference of the ``:61:`` line (after ``//``) unless it is ``NONREF``.
- OFX: ``<account id>:<FITID>``, so that two accounts cannot collide.
- CSV: the mapped ``bank_reference`` column when it has a value.
- Otherwise the reference is derived: ``"derived-"`` followed by 32 hexadecimal digits of
  the SHA-256 of (the account: the one the file names, else the ``account`` argument, else
  nothing; the booking date; the amount with the currency's minor units; the currency; the
  counterparty name and IBAN; the remittance text; the creditor reference; and the number of
  transactions with all these same values met before it in the same file). Two identical
  coffee purchases on the same day therefore stay two transactions, and importing the same
  file again gives the same references.
- A bank reference that the file gives to two transactions with different values is not
  unique after all (a CSV column that repeats, say): each of those transactions gets
  ``"derived-"`` and a hash of that reference and its values instead, so that none is taken
  for a duplicate of another. The same reference with the same values is the same
  transaction listed twice and keeps a single reference.

Amounts are exact ``Decimal`` values with the currency's minor units (``12.5`` EUR becomes
``12.50``; ``1.234`` EUR is refused). Every 10,000 transactions a progress line is logged.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import mt940
from lxml import etree  # type: ignore[import-untyped]
from ofxtools.Parser import OFXTree
from pycamt.parser import Camt053Parser  # type: ignore[import-untyped]

from relance.common.logging import get_logger
from relance.common.textguard import first_unstorable

log = get_logger(__name__)

StatementFormat = Literal["camt053", "mt940", "ofx", "csv"]

PROGRESS_EVERY = 10_000
DERIVED_PREFIX = "derived-"

# ISO 4217 currencies whose minor unit is not two decimals; every other code has two.
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        [
            *("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"),
            *("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"),
        ],
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_MAX_AMOUNT = Decimal("1e15")


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


# --- CSV mapping --------------------------------------------------------------------------

_DATE_FORMATS: dict[str, str] = {
    "iso": "%Y-%m-%d",
    "yyyy-mm-dd": "%Y-%m-%d",
    "dd/mm/yyyy": "%d/%m/%Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "dd-mm-yyyy": "%d-%m-%Y",
    "mm/dd/yyyy": "%m/%d/%Y",
    "dd/mm/yy": "%d/%m/%y",
    "dd.mm.yy": "%d.%m.%y",
    "yyyymmdd": "%Y%m%d",
}
_DELIMITERS = (";", ",", "\t", "|")
_CURRENCY_SYMBOLS_RE = re.compile("[\u20ac$\u00a3\u00a5]")
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.+\-Z]*)?")


@dataclass(frozen=True)
class CsvMapping:
    """How the columns of a CSV statement map to the transaction fields.

    Column names are matched against the header row ignoring case and surrounding spaces.
    ``amount`` holds a signed amount; a file with two columns instead names them
    ``credit`` and ``debit`` (money in, money out; empty cells count as zero).
    ``currency`` names a column, or ``fixed_currency`` gives the currency of every row.
    The optional columns (``bank_reference`` and the counterparty and remittance ones) are
    read when the header has them. ``date_format`` is ``"iso"`` (the default),
    ``"dd/mm/yyyy"``, ``"dd.mm.yyyy"``, another alias of ``_DATE_FORMATS`` or a
    ``strptime`` pattern. ``skip_lines`` lines before the header are ignored.
    """

    booked_on: str = "booked_on"
    amount: str | None = "amount"
    credit: str | None = None
    debit: str | None = None
    currency: str | None = "currency"
    fixed_currency: str | None = None
    bank_reference: str = "bank_reference"
    counterparty_name: str = "counterparty_name"
    counterparty_iban: str = "counterparty_iban"
    remittance_info: str = "remittance_info"
    creditor_reference: str = "creditor_reference"
    delimiter: str | None = None
    decimal_separator: str = "."
    date_format: str = "iso"
    encoding: str | None = None
    skip_lines: int = 0

    def __post_init__(self) -> None:
        if self.delimiter is not None and (
            len(self.delimiter) != 1 or self.delimiter in '"\r\n' or self.delimiter.isalnum()
        ):
            raise StatementError(f"delimiter {self.delimiter!r} must be one character", "mapping")
        if self.decimal_separator not in (".", ","):
            raise StatementError(
                f"decimal_separator {self.decimal_separator!r} must be '.' or ','", "mapping"
            )
        pattern = _DATE_FORMATS.get(self.date_format.lower(), self.date_format)
        if "%" not in pattern:
            raise StatementError(
                f"date_format {self.date_format!r} is neither one of "
                f"{', '.join(sorted(_DATE_FORMATS))} nor a strptime pattern",
                "mapping",
            )
        if (self.credit is None) != (self.debit is None):
            raise StatementError("credit and debit columns go together", "mapping")
        if self.credit is not None and self.amount is not None:
            raise StatementError("give either amount or credit and debit, not both", "mapping")
        if self.credit is None and self.amount is None:
            raise StatementError("an amount column (or credit and debit) is needed", "mapping")
        if self.fixed_currency is not None:
            if not _CURRENCY_RE.fullmatch(self.fixed_currency):
                raise StatementError(
                    f"fixed_currency {self.fixed_currency!r} is not an ISO 4217 code",
                    "mapping",
                )
        elif self.currency is None:
            raise StatementError("a currency column or a fixed_currency is needed", "mapping")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise StatementError(f"unknown encoding {self.encoding!r}", "mapping") from None
        if self.skip_lines < 0:
            raise StatementError("skip_lines must be 0 or more", "mapping")

    @property
    def strptime_pattern(self) -> str:
        return _DATE_FORMATS.get(self.date_format.lower(), self.date_format)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CsvMapping:
        """Build a mapping from the client's JSON object; unknown keys or bad values raise."""
        if not isinstance(raw, Mapping):
            raise StatementError("the CSV mapping must be a JSON object", "mapping")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(key) for key in raw if key not in known)
        if unknown:
            raise StatementError(
                f"unknown CSV mapping key(s) {', '.join(unknown)}; known keys: {', '.join(known)}",
                "mapping",
            )
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "skip_lines":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise StatementError("skip_lines must be an integer", "mapping")
            elif value is not None and not isinstance(value, str):
                raise StatementError(f"{key} must be a string", "mapping")
            elif isinstance(value, str) and not value.strip() and key != "delimiter":
                raise StatementError(f"{key} must not be empty", "mapping")
            elif value is None and key not in (
                "amount",
                "currency",
                "credit",
                "debit",
                "fixed_currency",
                "delimiter",
                "encoding",
            ):
                raise StatementError(f"{key} must not be null", "mapping")
            values[key] = value
        if values.get("credit") is not None and "amount" not in values:
            values["amount"] = None
        if values.get("fixed_currency") is not None and "currency" not in values:
            values["currency"] = None
        if isinstance(values.get("fixed_currency"), str):
            values["fixed_currency"] = values["fixed_currency"].strip().upper()
        if values.get("delimiter") == "\\t":
            values["delimiter"] = "\t"
        return cls(**values)


# --- Entry point --------------------------------------------------------------------------


def detect_format(content: bytes) -> StatementFormat:
    """Say which statement format ``content`` is in, from the content itself.

    XML is CAMT.053 when it holds a ``BkToCstmrStmt`` document and OFX when it holds an
    ``OFX`` element; an ``OFXHEADER:`` header is OFX 1.x; ``:20:`` and ``:25:`` tags at the
    start of lines are MT940; anything else is taken as CSV. An empty file and XML that is
    neither CAMT.053 nor OFX raise ``StatementError``.
    """
    head_bytes = content[:8192]
    if head_bytes.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head_bytes.decode("utf-16", errors="ignore").lstrip()
    else:
        head = head_bytes.removeprefix(codecs.BOM_UTF8).decode("latin-1").lstrip()
    if not head.strip():
        raise StatementError("the file is empty")
    upper = head.upper()
    if upper.startswith("OFXHEADER") or re.search(r"<\?OFX\b", upper) or upper.startswith("<OFX"):
        return "ofx"
    if head.startswith("<"):
        if "BkToCstmrStmt" in head or "camt.053" in head:
            return "camt053"
        camt = re.search(r"camt\.0\d\d", head)
        if camt:
            raise StatementError(
                f"this is a {camt.group(0)} file; only camt.053 statements are read"
            )
        raise StatementError("an XML file that is neither a CAMT.053 nor an OFX statement")
    if re.search(r"(?m)^:20:", head) and re.search(r"(?m)^:25:", head):
        return "mt940"
    if "{1:" in head[:20] and re.search(r"(?m)^:20:", head):
        return "mt940"
    return "csv"


def parse_statement(
    content: bytes,
    *,
    filename: str | None = None,
    csv_mapping: CsvMapping | None = None,
    account: str | None = None,
) -> list[BankTransaction]:
    """Detect the format from the content (CAMT.053 XML, MT940, OFX 1.x SGML and 2.x XML,
    else CSV) and parse it all, or raise StatementError (all or nothing: a malformed or
    truncated file raises, never returns part of it)."""
    fmt = detect_format(content)
    default_account = _normalize_account(account)
    drafts: Iterator[_Draft]
    if fmt == "camt053":
        drafts = _camt_drafts(content)
    elif fmt == "mt940":
        drafts = _mt940_drafts(content)
    elif fmt == "ofx":
        drafts = _ofx_drafts(content)
    else:
        drafts = _csv_drafts(content, csv_mapping or CsvMapping())
    try:
        transactions = _finish(drafts, default_account)
    except StatementError:
        raise
    except Exception as exc:  # a parser's own error that slipped through: still a 422
        raise StatementError(f"the {fmt} file cannot be read ({type(exc).__name__})") from exc
    log.info(
        "statement parsed",
        format=fmt,
        filename=filename,
        transactions=len(transactions),
    )
    return transactions


# --- Shared -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    booked_on: date
    amount: Decimal
    currency: str
    reference: str | None = None
    account: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    remittance_info: str | None = None
    creditor_reference: str | None = None


def _finish(drafts: Iterable[_Draft], default_account: str | None) -> list[BankTransaction]:
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


def _check_storable(draft: _Draft, number: int) -> None:
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


def _money(value: Decimal, currency: str, where: str) -> Decimal:
    """``value`` with exactly the currency's minor units, or StatementError."""
    if not _CURRENCY_RE.fullmatch(currency):
        raise StatementError(f"currency {currency!r} is not an ISO 4217 code", where)
    if not value.is_finite() or abs(value) >= _MAX_AMOUNT:
        raise StatementError(f"amount {value} is out of range", where)
    exponent = Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2))
    try:
        exact = value.quantize(exponent)
    except InvalidOperation:
        raise StatementError(f"amount {value} is out of range", where) from None
    if exact != value:
        raise StatementError(f"amount {value} has more decimals than {currency} allows", where)
    return exact


def _clean(text: str | None) -> str | None:
    """Whitespace runs (line breaks included) become one space; empty becomes None."""
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


def _normalize_account(value: str | None) -> str | None:
    if value is None:
        return None
    normalized = "".join(value.split()).upper()
    return normalized or None


def _iban(value: str | None) -> str | None:
    """An IBAN without spaces in upper case, or None when the value is not shaped like one."""
    normalized = _normalize_account(value)
    if normalized is None or not _IBAN_RE.fullmatch(normalized):
        return None
    return normalized


def _encoding_of(content: bytes, encoding: str | None = None) -> str:
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
        return _encoding_of(content, "utf-16")
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            content.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate
    return "latin-1"


def _decode(content: bytes, encoding: str | None = None) -> str:
    text = content.decode(_encoding_of(content, encoding))
    found = first_unstorable(text)
    if found is not None:
        line = text.count("\n", 0, found[0]) + 1
        raise StatementError(
            f"the file holds {found[1]}: it is not a text statement", f"line {line}"
        )
    return text


# --- CAMT.053 -----------------------------------------------------------------------------

_CAMT_NS_RE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d\d)$")
_NON_BOOKED = frozenset({"PDNG", "INFO", "FUTR"})


def _camt_drafts(content: bytes) -> Iterator[_Draft]:
    events = etree.iterparse(
        io.BytesIO(content),
        events=("start", "end"),
        # Only the elements this reader acts on raise events ("{*}" is any namespace).
        tag=("{*}Document", "{*}Stmt", "{*}Acct", "{*}Ntry"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    ns = ""
    root_seen = False
    statement: Any = None
    account: str | None = None
    entry_number = 0
    statements_seen = 0
    try:
        for event, elem in events:
            if not isinstance(elem.tag, str):
                continue
            qname = etree.QName(elem)
            if not root_seen:
                root_seen = True
                root = elem.getroottree().getroot()
                root_name = etree.QName(root)
                ns = root_name.namespace or ""
                if elem.getroottree().docinfo.doctype:
                    raise StatementError("a CAMT.053 file must not carry a DOCTYPE")
                _check_camt_root(root_name.localname, ns)
                if elem is root:
                    continue
            name = qname.localname
            if event == "start":
                if name == "Stmt" and statement is None:
                    statements_seen += 1
                    statement = elem
                    account = None
                continue
            if name == "Acct" and statement is not None and elem.getparent() is statement:
                account = _normalize_account(
                    elem.findtext(_path(ns, "Id/IBAN")) or elem.findtext(_path(ns, "Id/Othr/Id"))
                )
            elif name == "Ntry" and statement is not None and elem.getparent() is statement:
                entry_number += 1
                yield from _camt_entry(elem, ns, account, entry_number)
                # Forget what was read, so that a large file is not kept whole in memory.
                elem.clear(keep_tail=False)
                parent = elem.getparent()
                while elem.getprevious() is not None:
                    del parent[0]
            elif name == "Stmt" and elem is statement:
                statement = None
                elem.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if getattr(exc, "lineno", None) else None
        message = exc.msg if getattr(exc, "msg", None) else str(exc)
        raise StatementError(
            f"the XML is broken or cut short ({message})",
            f"line {line}" if line else None,
        ) from None
    if not root_seen:
        raise StatementError("the XML document is not a CAMT.053 Document")
    if statements_seen == 0:
        raise StatementError("the CAMT.053 document has no statement (Stmt)")


def _check_camt_root(localname: str, ns: str) -> None:
    if localname != "Document":
        raise StatementError(f"the root element is {localname}, not a CAMT.053 Document")
    if ns:
        match = _CAMT_NS_RE.match(ns)
        if match is None or not 2 <= int(match.group(1)) <= 13:
            raise StatementError(
                f"unsupported CAMT namespace {ns}; camt.053.001.02 to .13 are read"
            )


def _path(ns: str, path: str) -> str:
    if not ns:
        return path
    return "/".join(f"{{{ns}}}{part}" for part in path.split("/"))


def _camt_entry(entry: Any, ns: str, account: str | None, number: int) -> Iterator[_Draft]:
    where = f"entry {number}"
    if entry.sourceline:
        where += f" (line {entry.sourceline})"

    def text(elem: Any, path: str) -> str | None:
        value = elem.findtext(_path(ns, path))
        return value.strip() or None if isinstance(value, str) else None

    status_elem = entry.find(_path(ns, "Sts"))
    status = None
    if status_elem is not None:
        status = text(status_elem, "Cd") or text(status_elem, "Prtry") or _clean(status_elem.text)
    if status in _NON_BOOKED:
        return

    entry_amount, entry_currency = _camt_amount(entry.find(_path(ns, "Amt")), where)
    if entry_amount is None or entry_currency is None:
        raise StatementError("the entry has no amount (Amt with Ccy)", where)
    entry_sign = _camt_sign(text(entry, "CdtDbtInd"), where)
    booked_text = (
        text(entry, "BookgDt/Dt")
        or text(entry, "BookgDt/DtTm")
        or text(entry, "ValDt/Dt")
        or text(entry, "ValDt/DtTm")
    )
    if booked_text is None:
        raise StatementError("the entry has no booking date (BookgDt)", where)
    booked_on = _iso_date(booked_text, where)
    entry_reference = text(entry, "AcctSvcrRef")
    entry_number_ref = text(entry, "NtryRef")
    if entry_reference is None and entry_number_ref is not None:
        # Many banks number the entries of each statement 1, 2, 3...: the account and the
        # booking date make such a number unique.
        day = booked_on.strftime("%Y%m%d")
        entry_reference = "/".join(part for part in (account, day, entry_number_ref) if part)
    entry_info = _clean(text(entry, "AddtlNtryInf"))

    details = entry.findall(_path(ns, "NtryDtls/TxDtls"))
    # pycamt reads the parties and the remittance text; it is given this entry alone.
    parsed = _pycamt_transactions(entry, ns, where)
    if not details:
        yield _Draft(
            booked_on=booked_on,
            amount=_money(entry_sign * entry_amount, entry_currency, where),
            currency=entry_currency,
            reference=entry_reference,
            account=account,
            remittance_info=entry_info,
        )
        return
    if len(parsed) != len(details):
        raise StatementError("the entry's transaction details cannot be read", where)
    own_references = [text(detail, "Refs/AcctSvcrRef") for detail in details]
    if len(details) > 1 and (
        None in own_references
        or len(set(own_references)) < len(details)
        or entry_reference in own_references
    ):
        # Some banks repeat one reference in every transaction of a batch: the position in
        # the entry keeps them apart.
        base = entry_reference or next((ref for ref in own_references if ref), None)
        own_references = [
            None if base is None else f"{base}/{position}"
            for position in range(1, len(details) + 1)
        ]
    elif len(details) == 1 and own_references[0] is None:
        own_references = [entry_reference]
    for position, (detail, data) in enumerate(zip(details, parsed, strict=True), start=1):
        detail_where = f"{where}, transaction {position}" if len(details) > 1 else where
        amount, currency = _camt_amount(detail.find(_path(ns, "Amt")), detail_where)
        if amount is None:
            amount, currency = _camt_amount(
                detail.find(_path(ns, "AmtDtls/TxAmt/Amt")), detail_where
            )
        if amount is None:
            # Only the instructed amount: it is the booked one when in the entry's currency.
            instructed, instructed_currency = _camt_amount(
                detail.find(_path(ns, "AmtDtls/InstdAmt/Amt")), detail_where
            )
            if instructed_currency == entry_currency:
                amount, currency = instructed, instructed_currency
        if amount is None or currency is None:
            if len(details) > 1:
                raise StatementError("a transaction of a batched entry has no amount", detail_where)
            amount, currency = entry_amount, entry_currency
        detail_sign_text = text(detail, "CdtDbtInd")
        sign = _camt_sign(detail_sign_text, detail_where) if detail_sign_text else entry_sign
        reference = own_references[position - 1]
        if sign > 0:
            name, iban = data.get("DebtorName"), data.get("DebtorIBAN")
        else:
            name, iban = data.get("CreditorName"), data.get("CreditorIBAN")
        creditor_reference = None
        for ref in detail.iterfind(_path(ns, "RmtInf/Strd/CdtrRefInf/Ref")):
            creditor_reference = _normalize_account(ref.text)
            if creditor_reference:
                break
        remittance = (
            _clean(data.get("RemittanceInformationFull"))
            or _clean(data.get("AdditionalRemittanceInformation"))
            or _clean(text(detail, "AddtlTxInf"))
            or entry_info
        )
        yield _Draft(
            booked_on=booked_on,
            amount=_money(sign * amount, currency, detail_where),
            currency=currency,
            reference=reference,
            account=account,
            counterparty_name=_clean(name),
            counterparty_iban=_iban(iban),
            remittance_info=remittance,
            creditor_reference=creditor_reference,
        )


def _pycamt_transactions(entry: Any, ns: str, where: str) -> list[dict[str, Any]]:
    entry_xml = etree.tostring(entry, with_tail=False)
    xmlns = f' xmlns="{ns}"' if ns else ""
    document = (
        f"<Document{xmlns}><BkToCstmrStmt><Stmt>".encode()
        + entry_xml
        + b"</Stmt></BkToCstmrStmt></Document>"
    )
    try:
        result = Camt053Parser(document).get_transactions()
    except Exception as exc:
        raise StatementError(f"the entry cannot be read ({exc})", where) from None
    if not isinstance(result, list):
        raise StatementError("the entry cannot be read", where)
    return [item for item in result if isinstance(item, dict)]


def _camt_amount(elem: Any, where: str) -> tuple[Decimal | None, str | None]:
    if elem is None:
        return None, None
    raw = (elem.text or "").strip()
    currency = (elem.get("Ccy") or "").strip()
    if not re.fullmatch(r"[0-9]{1,18}(\.[0-9]{1,5})?", raw):
        raise StatementError(f"amount {raw!r} is not a positive decimal number", where)
    if not _CURRENCY_RE.fullmatch(currency):
        raise StatementError(f"amount {raw} has no valid currency (Ccy={currency!r})", where)
    return Decimal(raw), currency


def _camt_sign(indicator: str | None, where: str) -> int:
    if indicator == "CRDT":
        return 1
    if indicator == "DBIT":
        return -1
    raise StatementError(f"credit/debit indicator {indicator!r} is not CRDT or DBIT", where)


def _iso_date(value: str, where: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise StatementError(f"date {value!r} is not a valid ISO date", where) from None


# --- MT940 --------------------------------------------------------------------------------

_MT940_OPTIONS = mt940.Options.all()
# The mt940 package logs every line it cannot match, with its regular expression, at ERROR
# level: a user's broken upload is not an error of this service, and StatementError already
# says what and where.
logging.getLogger("mt940").setLevel(logging.CRITICAL)


def _without_envelope(line: str) -> str:
    """The line without the SWIFT envelope: "{1:...}{2:...}{4:" opens the text block and
    "-}" (possibly followed by "{5:...}") closes it."""
    stripped = line.strip()
    if stripped.startswith("{"):
        start = stripped.find("{4:")
        return stripped[start + 3 :] if start >= 0 else ""
    if stripped.startswith("-}") or stripped.startswith("}"):
        return ""
    return line


def _mt940_drafts(content: bytes) -> Iterator[_Draft]:
    text = _decode(content).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    blocks = _mt940_blocks(lines)
    if not blocks:
        raise StatementError("the MT940 file has no statement (:20:)")
    for first_line, block_lines in blocks:
        yield from _mt940_block(first_line, block_lines)


def _mt940_blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """The statements of the file, each with the number of its first line."""
    blocks: list[tuple[int, list[str]]] = []
    for number, raw_line in enumerate(lines, start=1):
        # The SWIFT envelope ("{1:...}{2:...}{4:" before, "-}" after) is not statement data;
        # an emptied line keeps the numbering of the others.
        line = _without_envelope(raw_line)
        if line.startswith(":20:"):
            blocks.append((number, []))
        if blocks:
            blocks[-1][1].append(line)
    return blocks


def _mt940_block(first_line: int, lines: list[str]) -> Iterator[_Draft]:
    statement_lines = [
        first_line + offset for offset, line in enumerate(lines) if line.startswith(":61:")
    ]
    where_block = f"line {first_line}"
    try:
        parsed = mt940.models.Transactions(options=_MT940_OPTIONS)
        parsed.parse("\n".join(lines))
    except Exception as exc:
        raise StatementError(
            f"a line does not parse ({_mt940_error(exc)})",
            _mt940_error_where(exc, lines, first_line) or where_block,
        ) from None
    data = parsed.data
    currency = parsed.currency
    opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    if opening is None:
        raise StatementError("the statement has no opening balance (:60F:)", where_block)
    if closing is None:
        last = max((i for i, line in enumerate(lines) if line.strip()), default=0)
        raise StatementError(
            "the statement ends before its closing balance (:62F:): the file is cut short",
            f"line {first_line + last}",
        )
    if not isinstance(currency, str):
        raise StatementError("the statement has no currency", where_block)
    account = _normalize_account(data.get("account_identification"))
    transactions = list(parsed)
    if len(transactions) != len(statement_lines):
        raise StatementError("the :61: lines cannot all be read", where_block)
    total = Decimal(0)
    for line_number, transaction in zip(statement_lines, transactions, strict=True):
        where = f"line {line_number}"
        tx = transaction.data
        amount = _money(tx["amount"].amount, currency, where)
        total += amount
        booked = tx.get("entry_date") or tx.get("date")
        if not isinstance(booked, date):
            raise StatementError("the :61: line has no date", where)
        reference = _clean(tx.get("bank_reference"))
        if reference is not None and reference.upper() == "NONREF":
            reference = None
        details = tx.get("transaction_details")
        remittance = _clean(tx.get("purpose")) or _clean(
            details if isinstance(details, str) else None
        )
        yield _Draft(
            booked_on=date(booked.year, booked.month, booked.day),
            amount=amount,
            currency=currency,
            reference=reference,
            account=account,
            counterparty_name=_clean(tx.get("applicant_name")),
            counterparty_iban=_iban(tx.get("applicant_iban")),
            remittance_info=remittance,
        )
    expected = closing.amount.amount - opening.amount.amount
    if total != expected:
        closing_line = next(
            (offset for offset, line in enumerate(lines) if line.startswith((":62F:", ":62M:"))),
            0,
        )
        raise StatementError(
            f"the transactions add up to {total} but the balances differ by {expected}: "
            "an amount is wrong or a line is missing",
            f"line {first_line + closing_line}",
        )


def _mt940_error(exc: Exception) -> str:
    if isinstance(exc, RuntimeError) and exc.args:
        return str(exc.args[0])
    return f"{type(exc).__name__}: {exc}"


def _mt940_error_where(exc: Exception, lines: list[str], first_line: int) -> str | None:
    """The line of the tag whose value the mt940 package could not read."""
    value = exc.args[2] if isinstance(exc, RuntimeError) and len(exc.args) >= 3 else None
    if not isinstance(value, str) or not value.strip():
        return None
    first = value.strip().split("\n")[0].strip()
    for offset, line in enumerate(lines):
        if first in line and line.startswith(":"):
            return f"line {first_line + offset}"
    return None


# --- OFX ----------------------------------------------------------------------------------


_OFX_AMOUNT_RE = re.compile(r"[-+]?[0-9]+(?:[.,][0-9]*)?|[-+]?[.,][0-9]+")


def _ofx_drafts(content: bytes) -> Iterator[_Draft]:
    if not re.search(rb"</OFX>\s*\Z", content[-256:], re.IGNORECASE):
        raise StatementError("the OFX file does not end with </OFX>: it is cut short")
    tree = OFXTree()
    try:
        with warnings.catch_warnings():
            # ofxtools warns about values longer than the OFX spec allows (an IBAN in an
            # ACCTID); banks send them, and the values are still right.
            warnings.simplefilter("ignore")
            tree.parse(io.BytesIO(content))
            raw_dates = _ofx_raw_dates(tree)
            ofx = tree.convert()
            statements = list(ofx.statements)
    except StatementError:
        raise
    except Exception as exc:
        raise StatementError(
            f"the OFX file is broken or cut short ({type(exc).__name__}: {exc})"
        ) from None
    counters = {"STMTRS": 0, "CCSTMTRS": 0}
    for statement in statements:
        kind = type(statement).__name__
        transactions = getattr(statement, "banktranlist", None)
        if kind not in counters:
            continue  # investment statements carry no bank transactions
        dates = raw_dates[kind][counters[kind]] if counters[kind] < len(raw_dates[kind]) else []
        counters[kind] += 1
        account_id = _clean(str(statement.account.acctid))
        if account_id is None:
            raise StatementError("a statement has no account id (ACCTID)")
        if transactions is None:
            continue
        items = list(transactions)
        if len(items) != len(dates):
            raise StatementError("the transactions' dates cannot be read", f"account {account_id}")
        for number, (item, raw_date) in enumerate(zip(items, dates, strict=True), start=1):
            fitid = _clean(item.fitid)
            where = f"transaction FITID={fitid}" if fitid else f"transaction {number}"
            if fitid is None:
                raise StatementError("the transaction has no FITID", where)
            currency = str(statement.curdef)
            if item.currency is not None:
                currency = str(item.currency.cursym)
            if not isinstance(item.trnamt, Decimal):
                raise StatementError("the transaction has no amount (TRNAMT)", where)
            booked_on = _ofx_date(raw_date, where)
            name = _clean(item.name) or (
                _clean(item.payee.name) if item.payee is not None else None
            )
            counterparty_iban = None
            if item.bankacctto is not None:
                counterparty_iban = _iban(item.bankacctto.acctid)
            yield _Draft(
                booked_on=booked_on,
                amount=_money(item.trnamt, currency, where),
                currency=currency,
                reference=f"{account_id}:{fitid}",
                account=_normalize_account(account_id),
                counterparty_name=name,
                counterparty_iban=counterparty_iban,
                remittance_info=_clean(item.memo),
            )


def _ofx_raw_dates(tree: OFXTree) -> dict[str, list[list[str | None]]]:
    """DTPOSTED as written, per statement kind: ofxtools turns it into UTC, which can move
    a transaction booked at midnight in a time zone east of UTC to the previous day."""
    root = tree.getroot()
    result: dict[str, list[list[str | None]]] = {"STMTRS": [], "CCSTMTRS": []}
    if root is None:
        raise StatementError("the OFX file has no OFX element")
    for elem in root.iter():
        if elem.tag in result:
            dates: list[str | None] = []
            for number, trn in enumerate(elem.iter("STMTTRN"), start=1):
                fitid = _clean(trn.findtext("FITID"))
                where = f"transaction FITID={fitid}" if fitid else f"transaction {number}"
                if fitid is None:
                    raise StatementError("the transaction has no FITID", where)
                amount = (trn.findtext("TRNAMT") or "").strip()
                if not _OFX_AMOUNT_RE.fullmatch(amount):
                    raise StatementError(f"TRNAMT {amount!r} is not an amount", where)
                dates.append(trn.findtext("DTPOSTED"))
            result[elem.tag].append(dates)
    return result


def _ofx_date(raw: str | None, where: str) -> date:
    value = (raw or "").strip()
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        raise StatementError(f"DTPOSTED {value!r} is not a date", where) from None


# --- CSV ----------------------------------------------------------------------------------


def _csv_drafts(content: bytes, mapping: CsvMapping) -> Iterator[_Draft]:
    # Decoded as it is read, so that a large file is not held twice in memory.
    stream = io.TextIOWrapper(
        io.BytesIO(content), encoding=_encoding_of(content, mapping.encoding), newline=""
    )
    for _ in range(mapping.skip_lines):
        stream.readline()
    header_offset = mapping.skip_lines
    header_line = stream.readline()
    if not header_line.strip():
        raise StatementError("the CSV file has no header row", f"line {header_offset + 1}")
    delimiter = mapping.delimiter or _sniff_delimiter(header_line)
    reader = csv.reader(itertools.chain([header_line], stream), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise StatementError(
            f"the header row cannot be read ({exc})", f"line {header_offset + 1}"
        ) from None
    _check_row(header, f"line {header_offset + 1}")
    columns = {name.strip().lstrip("\ufeff").lower(): index for index, name in enumerate(header)}

    def column(name: str | None, required: bool) -> int | None:
        if name is None:
            return None
        index = columns.get(name.strip().lower())
        if index is None and required:
            raise StatementError(
                f"the header has no column {name!r} (columns: {', '.join(header)})",
                f"line {header_offset + 1}",
            )
        return index

    date_col = column(mapping.booked_on, True)
    amount_col = column(mapping.amount, True)
    credit_col = column(mapping.credit, True)
    debit_col = column(mapping.debit, True)
    currency_col = column(mapping.currency, mapping.fixed_currency is None)
    optional: dict[str, int | None] = {
        key: column(getattr(mapping, key), False)
        for key in (
            "bank_reference",
            "counterparty_name",
            "counterparty_iban",
            "remittance_info",
            "creditor_reference",
        )
    }
    parse_amount = _amount_parser(mapping.decimal_separator)
    pattern = mapping.strptime_pattern
    iso = pattern == "%Y-%m-%d"

    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise StatementError(
                f"the row cannot be read ({exc})", f"line {header_offset + reader.line_num}"
            ) from None
        where = f"line {header_offset + reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        _check_row(row, where)
        if len(row) != len(header):
            raise StatementError(
                f"the row has {len(row)} fields but the header has {len(header)}", where
            )

        def cell(index: int | None, row: list[str] = row) -> str | None:
            if index is None or index >= len(row):
                return None
            value = row[index].strip()
            return value or None

        booked_text = cell(date_col)
        if booked_text is None:
            raise StatementError(f"the date ({mapping.booked_on}) is empty", where)
        booked_on = _csv_date(booked_text, pattern, iso, where)
        if amount_col is not None:
            amount_text = cell(amount_col)
            if amount_text is None:
                raise StatementError(f"the amount ({mapping.amount}) is empty", where)
            amount = parse_amount(amount_text, where)
        else:
            credit_text, debit_text = cell(credit_col), cell(debit_col)
            if credit_text is None and debit_text is None:
                raise StatementError("both the credit and the debit are empty", where)
            credit = abs(parse_amount(credit_text, where)) if credit_text else Decimal(0)
            debit = abs(parse_amount(debit_text, where)) if debit_text else Decimal(0)
            amount = credit - debit
        currency = mapping.fixed_currency or (cell(currency_col) or "").upper()
        if not currency:
            raise StatementError(f"the currency ({mapping.currency}) is empty", where)
        creditor_reference = _normalize_account(cell(optional["creditor_reference"]))
        yield _Draft(
            booked_on=booked_on,
            amount=_money(amount, currency, where),
            currency=currency,
            reference=cell(optional["bank_reference"]),
            counterparty_name=_clean(cell(optional["counterparty_name"])),
            counterparty_iban=_iban(cell(optional["counterparty_iban"])),
            remittance_info=_clean(cell(optional["remittance_info"])),
            creditor_reference=creditor_reference,
        )


def _check_row(row: list[str], where: str) -> None:
    found = next(filter(None, map(first_unstorable, row)), None)
    if found is not None:
        raise StatementError(f"the row holds {found[1]}: not a text statement", where)


def _sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter that the header row holds most often (outside quotes)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _amount_parser(decimal_separator: str) -> Callable[[str, str], Decimal]:
    thousands = "[.' \u00a0\u202f]" if decimal_separator == "," else "[,' \u00a0\u202f]"
    dec = re.escape(decimal_separator)
    number = re.compile(
        rf"(?P<sign>[-+])?\s*(?P<int>[0-9]{{1,3}}(?:{thousands}[0-9]{{3}})+|[0-9]+)"
        rf"(?:{dec}(?P<frac>[0-9]+))?\s*(?P<trailing>-)?"
    )

    def parse(text: str, where: str) -> Decimal:
        # "12,50 €", "\u221212.50" (a Unicode minus) and "(12.50)" (accounting) are amounts too.
        cleaned = _CURRENCY_SYMBOLS_RE.sub("", text).replace("\u2212", "-").strip()
        bracketed = len(cleaned) > 2 and cleaned[0] == "(" and cleaned[-1] == ")"
        if bracketed:
            cleaned = cleaned[1:-1].strip()
        match = number.fullmatch(cleaned)
        signs = (match.group("sign"), match.group("trailing"), bracketed) if match else ()
        if match is None or sum(1 for sign in signs if sign) > 1:
            raise StatementError(
                f"amount {text!r} is not a number with {decimal_separator!r} as decimal separator",
                where,
            )
        digits = re.sub(r"[^0-9]", "", match.group("int"))
        frac = match.group("frac")
        value = Decimal(f"{digits}.{frac}" if frac else digits)
        negative = bracketed or match.group("sign") == "-" or match.group("trailing") == "-"
        return -value if negative else value

    return parse


def _csv_date(text: str, pattern: str, iso: bool, where: str) -> date:
    try:
        if iso:
            if not _ISO_DATE_RE.fullmatch(text):
                raise ValueError(text)
            return date.fromisoformat(text[:10])
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            # "15/01/2024 10:22": the date with a time of day after it.
            first = text.split()[0] if " " in text else text
            return datetime.strptime(first, pattern).date()
    except ValueError:
        raise StatementError(f"date {text!r} does not match the format {pattern}", where) from None
