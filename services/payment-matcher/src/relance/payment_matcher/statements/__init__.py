"""Bank statement files turned into bank transactions: bytes in, ``BankTransaction`` list out.

This package owns reading the statement files a user uploads (CAMT.053 XML, MT940, OFX 1.x
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
``12.50``; ``1.234`` EUR is refused), below ``relance.common.money.MAX_AMOUNT`` in absolute
value: the minor units and the limit of every amount the service takes. Every 10,000
transactions a progress line is logged.

One module per format (``camt053``, ``mt940``, ``ofx``, ``csv_mapping``), each turning the
file into drafts; ``shared`` holds what they have in common and turns the drafts into
``BankTransaction`` values with their references; this package recognises the format.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import Literal

from relance.common.logging import get_logger
from relance.payment_matcher.statements.camt053 import camt053_drafts
from relance.payment_matcher.statements.csv_mapping import CsvMapping, csv_drafts
from relance.payment_matcher.statements.mt940 import mt940_drafts
from relance.payment_matcher.statements.ofx import ofx_drafts
from relance.payment_matcher.statements.shared import (
    DERIVED_PREFIX,
    PROGRESS_EVERY,
    BankTransaction,
    Draft,
    StatementError,
    finish,
    normalize_account,
)

log = get_logger(__name__)

__all__ = [
    "DERIVED_PREFIX",
    "PROGRESS_EVERY",
    "BankTransaction",
    "CsvMapping",
    "StatementError",
    "StatementFormat",
    "detect_format",
    "parse_statement",
]

StatementFormat = Literal["camt053", "mt940", "ofx", "csv"]


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
    default_account = normalize_account(account)
    drafts: Iterator[Draft]
    if fmt == "camt053":
        drafts = camt053_drafts(content)
    elif fmt == "mt940":
        drafts = mt940_drafts(content)
    elif fmt == "ofx":
        drafts = ofx_drafts(content)
    else:
        drafts = csv_drafts(content, csv_mapping or CsvMapping())
    try:
        transactions = finish(drafts, default_account)
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
