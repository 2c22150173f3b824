"""MT940: each ``:61:`` line with its ``:86:`` details, every statement checked against
its closing balance."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import mt940

from relance.common.logging import get_logger
from relance.payment_matcher.statements.shared import (
    Draft,
    StatementError,
    as_iban,
    clean,
    decode_text,
    exact_amount,
    normalize_account,
)

log = get_logger(__name__)

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


def mt940_drafts(content: bytes) -> Iterator[Draft]:
    text = decode_text(content).replace("\r\n", "\n").replace("\r", "\n")
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


def _mt940_block(first_line: int, lines: list[str]) -> Iterator[Draft]:
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
    account = normalize_account(data.get("account_identification"))
    transactions = list(parsed)
    if len(transactions) != len(statement_lines):
        raise StatementError("the :61: lines cannot all be read", where_block)
    total = Decimal(0)
    for line_number, transaction in zip(statement_lines, transactions, strict=True):
        where = f"line {line_number}"
        tx = transaction.data
        amount = exact_amount(tx["amount"].amount, currency, where)
        total += amount
        booked = tx.get("entry_date") or tx.get("date")
        if not isinstance(booked, date):
            raise StatementError("the :61: line has no date", where)
        reference = clean(tx.get("bank_reference"))
        if reference is not None and reference.upper() == "NONREF":
            reference = None
        details = tx.get("transaction_details")
        remittance = clean(tx.get("purpose")) or clean(
            details if isinstance(details, str) else None
        )
        yield Draft(
            booked_on=date(booked.year, booked.month, booked.day),
            amount=amount,
            currency=currency,
            reference=reference,
            account=account,
            counterparty_name=clean(tx.get("applicant_name")),
            counterparty_iban=as_iban(tx.get("applicant_iban")),
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
