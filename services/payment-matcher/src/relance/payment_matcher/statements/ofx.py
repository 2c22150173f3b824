"""OFX 1.x (SGML) and 2.x (XML): each ``STMTTRN`` of the bank and credit card statements."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

from ofxtools.Parser import OFXTree

from relance.common.logging import get_logger
from relance.payment_matcher.statements.shared import (
    Draft,
    StatementError,
    as_iban,
    clean,
    exact_amount,
    normalize_account,
)

log = get_logger(__name__)


_OFX_AMOUNT_RE = re.compile(r"[-+]?[0-9]+(?:[.,][0-9]*)?|[-+]?[.,][0-9]+")


def ofx_drafts(content: bytes) -> Iterator[Draft]:
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
        account_id = clean(str(statement.account.acctid))
        if account_id is None:
            raise StatementError("a statement has no account id (ACCTID)")
        if transactions is None:
            continue
        items = list(transactions)
        if len(items) != len(dates):
            raise StatementError("the transactions' dates cannot be read", f"account {account_id}")
        for number, (item, raw_date) in enumerate(zip(items, dates, strict=True), start=1):
            fitid = clean(item.fitid)
            where = f"transaction FITID={fitid}" if fitid else f"transaction {number}"
            if fitid is None:
                raise StatementError("the transaction has no FITID", where)
            currency = str(statement.curdef)
            if item.currency is not None:
                currency = str(item.currency.cursym)
            if not isinstance(item.trnamt, Decimal):
                raise StatementError("the transaction has no amount (TRNAMT)", where)
            booked_on = _ofx_date(raw_date, where)
            name = clean(item.name) or (clean(item.payee.name) if item.payee is not None else None)
            counterparty_iban = None
            if item.bankacctto is not None:
                counterparty_iban = as_iban(item.bankacctto.acctid)
            yield Draft(
                booked_on=booked_on,
                amount=exact_amount(item.trnamt, currency, where),
                currency=currency,
                reference=f"{account_id}:{fitid}",
                account=normalize_account(account_id),
                counterparty_name=name,
                counterparty_iban=counterparty_iban,
                remittance_info=clean(item.memo),
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
                fitid = clean(trn.findtext("FITID"))
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
