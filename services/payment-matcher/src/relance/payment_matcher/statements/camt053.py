"""CAMT.053 (ISO 20022 ``BkToCstmrStmt``, camt.053.001.02 to .13), read entry by entry."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pycamt.parser import Camt053Parser  # type: ignore[import-untyped]

from relance.common.logging import get_logger
from relance.payment_matcher.statements.shared import (
    CURRENCY_RE,
    Draft,
    StatementError,
    as_iban,
    clean,
    exact_amount,
    normalize_account,
)

log = get_logger(__name__)

_CAMT_NS_RE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d\d)$")
_NON_BOOKED = frozenset({"PDNG", "INFO", "FUTR"})


def camt053_drafts(content: bytes) -> Iterator[Draft]:
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
                account = normalize_account(
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


def _camt_entry(entry: Any, ns: str, account: str | None, number: int) -> Iterator[Draft]:
    where = f"entry {number}"
    if entry.sourceline:
        where += f" (line {entry.sourceline})"

    def text(elem: Any, path: str) -> str | None:
        value = elem.findtext(_path(ns, path))
        return value.strip() or None if isinstance(value, str) else None

    status_elem = entry.find(_path(ns, "Sts"))
    status = None
    if status_elem is not None:
        status = text(status_elem, "Cd") or text(status_elem, "Prtry") or clean(status_elem.text)
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
    entry_info = clean(text(entry, "AddtlNtryInf"))

    details = entry.findall(_path(ns, "NtryDtls/TxDtls"))
    # pycamt reads the parties and the remittance text; it is given this entry alone.
    parsed = _pycamt_transactions(entry, ns, where)
    if not details:
        yield Draft(
            booked_on=booked_on,
            amount=exact_amount(entry_sign * entry_amount, entry_currency, where),
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
            creditor_reference = normalize_account(ref.text)
            if creditor_reference:
                break
        remittance = (
            clean(data.get("RemittanceInformationFull"))
            or clean(data.get("AdditionalRemittanceInformation"))
            or clean(text(detail, "AddtlTxInf"))
            or entry_info
        )
        yield Draft(
            booked_on=booked_on,
            amount=exact_amount(sign * amount, currency, detail_where),
            currency=currency,
            reference=reference,
            account=account,
            counterparty_name=clean(name),
            counterparty_iban=as_iban(iban),
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
    if not CURRENCY_RE.fullmatch(currency):
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
