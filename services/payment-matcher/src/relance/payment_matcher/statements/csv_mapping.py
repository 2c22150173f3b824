"""CSV statements: the column mapping a user gives (``CsvMapping``) and the rows read with it."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from relance.common.logging import get_logger
from relance.common.textguard import first_unstorable
from relance.payment_matcher.statements.shared import (
    CURRENCY_RE,
    Draft,
    StatementError,
    as_iban,
    clean,
    encoding_of,
    exact_amount,
    normalize_account,
)

log = get_logger(__name__)

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
            if not CURRENCY_RE.fullmatch(self.fixed_currency):
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


def csv_drafts(content: bytes, mapping: CsvMapping) -> Iterator[Draft]:
    # Decoded as it is read, so that a large file is not held twice in memory.
    stream = io.TextIOWrapper(
        io.BytesIO(content), encoding=encoding_of(content, mapping.encoding), newline=""
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
        creditor_reference = normalize_account(cell(optional["creditor_reference"]))
        yield Draft(
            booked_on=booked_on,
            amount=exact_amount(amount, currency, where),
            currency=currency,
            reference=cell(optional["bank_reference"]),
            counterparty_name=clean(cell(optional["counterparty_name"])),
            counterparty_iban=as_iban(cell(optional["counterparty_iban"])),
            remittance_info=clean(cell(optional["remittance_info"])),
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
