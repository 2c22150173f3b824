"""Statement files as a user uploads them: each field of each transaction, stable references
across re-imports, and every malformed or cut file refused with where it goes wrong."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relance.common.textguard import first_unstorable
from relance.payment_matcher.statements import (
    BankTransaction,
    CsvMapping,
    StatementError,
    detect_format,
    parse_statement,
)

FILES = Path(__file__).parent / "statements"
D = Decimal

FR_MAPPING = CsvMapping.from_dict(
    {
        "booked_on": "Date",
        "remittance_info": "Libellé",
        "amount": "Montant",
        "currency": "Devise",
        "bank_reference": "Référence",
        "counterparty_name": "Nom",
        "counterparty_iban": "IBAN",
        "decimal_separator": ",",
        "date_format": "dd/mm/yyyy",
    }
)
DE_MAPPING = CsvMapping.from_dict(
    {
        "booked_on": "Buchungstag",
        "counterparty_name": "Empfänger/Auftraggeber",
        "remittance_info": "Verwendungszweck",
        "debit": "Soll",
        "credit": "Haben",
        "fixed_currency": "eur",
        "decimal_separator": ",",
        "date_format": "dd.mm.yyyy",
        "skip_lines": 2,
    }
)
MAPPINGS: dict[str, CsvMapping | None] = {
    "fr_semicolon.csv": FR_MAPPING,
    "de_credit_debit.csv": DE_MAPPING,
    "default_comma.csv": None,
}
ALL_FILES = [
    "camt053_v02.xml",
    "camt053_v08.xml",
    "mt940.sta",
    "ofx1_sgml.ofx",
    "ofx2_xml.ofx",
    "fr_semicolon.csv",
    "de_credit_debit.csv",
    "default_comma.csv",
]


def read(name: str) -> bytes:
    return (FILES / name).read_bytes()


def parse(name: str, content: bytes | None = None, **kwargs: object) -> list[BankTransaction]:
    mapping = MAPPINGS.get(name)
    return parse_statement(
        read(name) if content is None else content,
        filename=name,
        csv_mapping=mapping,
        **kwargs,  # type: ignore[arg-type]
    )


def refused(name: str, content: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse(name, content)
    return caught.value


def derived(reference: str) -> bool:
    return re.fullmatch(r"derived-[0-9a-f]{32}", reference) is not None


def without_reference(tx: BankTransaction) -> tuple[object, ...]:
    return (
        tx.booked_on,
        tx.amount,
        tx.currency,
        tx.counterparty_name,
        tx.counterparty_iban,
        tx.remittance_info,
        tx.creditor_reference,
    )


# --- Format detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("camt053_v02.xml", "camt053"),
        ("camt053_v08.xml", "camt053"),
        ("mt940.sta", "mt940"),
        ("ofx1_sgml.ofx", "ofx"),
        ("ofx2_xml.ofx", "ofx"),
        ("fr_semicolon.csv", "csv"),
        ("de_credit_debit.csv", "csv"),
        ("default_comma.csv", "csv"),
    ],
)
def test_the_format_is_recognised_from_the_content_not_the_file_name(
    name: str, expected: str
) -> None:
    assert detect_format(read(name)) == expected
    # A misleading name changes nothing.
    assert parse_statement(read(name), filename="statement.txt", csv_mapping=MAPPINGS.get(name))


@pytest.mark.parametrize("content", [b"", b"   \r\n\n\t ", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(content: bytes) -> None:
    with pytest.raises(StatementError, match="empty"):
        parse_statement(content)


def test_a_camt_052_report_is_refused_by_name() -> None:
    content = read("camt053_v02.xml").replace(b"camt.053.001.02", b"camt.052.001.02")
    content = content.replace(b"BkToCstmrStmt", b"BkToCstmrAcctRpt")
    with pytest.raises(StatementError, match=r"camt\.052"):
        parse_statement(content)


def test_an_xml_file_that_is_no_statement_is_refused() -> None:
    with pytest.raises(StatementError, match="neither"):
        parse_statement(b'<?xml version="1.0"?><invoice><total>12</total></invoice>')


def test_a_file_in_no_known_format_is_refused_with_the_missing_columns() -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n")
    assert caught.value.where == "line 1"
    assert "booked_on" in caught.value.message


def test_the_error_reads_well_in_an_answer() -> None:
    error = StatementError("amount 'x' is not a number", "line 3")
    assert str(error) == "line 3: amount 'x' is not a number"
    assert (error.message, error.where) == ("amount 'x' is not a number", "line 3")
    assert str(StatementError("the file is empty")) == "the file is empty"
    assert isinstance(error, ValueError)


# --- CAMT.053 -----------------------------------------------------------------------------


def test_a_camt_053_001_02_statement_gives_every_booked_entry_with_its_fields() -> None:
    transactions = parse("camt053_v02.xml")

    assert transactions[:5] == [
        BankTransaction(
            bank_reference="2024011500001",
            booked_on=date(2024, 1, 15),
            amount=D("1200.00"),
            currency="EUR",
            counterparty_name="Boulangerie Martin SARL",
            counterparty_iban="DE89370400440532013000",
            remittance_info="Facture INV-2024-0042 merci",
        ),
        BankTransaction(
            bank_reference="2024011600007",
            booked_on=date(2024, 1, 16),
            amount=D("-350.45"),  # the account's amount, not the instructed USD
            currency="EUR",
            counterparty_name="Papeterie Durand",  # the creditor of a debit
            counterparty_iban="FR1420041010050500013M02606",
            remittance_info="Order PO-77",
        ),
        BankTransaction(
            bank_reference="BATCH-0120/1",
            booked_on=date(2024, 1, 20),
            amount=D("1000.00"),
            currency="EUR",
            counterparty_name="Atelier Petit",
            counterparty_iban="FR7610107001011234567890129",
            remittance_info="INV-2024-0050",
        ),
        BankTransaction(
            bank_reference="BATCH-0120/2",
            booked_on=date(2024, 1, 20),
            amount=D("800.00"),
            currency="EUR",
            counterparty_name="Garage Lefevre",
            remittance_info="INV-2024-0051",
        ),
        BankTransaction(
            bank_reference="BATCH-0120/3",
            booked_on=date(2024, 1, 20),
            amount=D("500.00"),
            currency="EUR",
            counterparty_name="Cabinet Roux",
            remittance_info="INV-2024-0052 acompte",
        ),
    ]
    coffees = transactions[5:]
    assert len(coffees) == 2  # the pending entry is not a transaction
    for coffee in coffees:
        assert derived(coffee.bank_reference)
        assert without_reference(coffee) == (
            date(2024, 1, 22),
            D("-3.50"),
            "EUR",
            None,
            None,
            "CARTE 22/01 CAFE DU COIN",
            None,
        )
    assert coffees[0].bank_reference != coffees[1].bank_reference
    assert str(transactions[4].amount) == "500.00"  # the currency's minor units


def test_a_camt_053_001_08_statement_gives_parties_references_and_structured_references() -> None:
    assert parse("camt053_v08.xml") == [
        BankTransaction(
            bank_reference="CH-20240205-0001-T1",  # the transaction's own AcctSvcrRef wins
            booked_on=date(2024, 2, 5),  # from a BookgDt/DtTm
            amount=D("1500.00"),
            currency="CHF",
            counterparty_name="Müller & Söhne AG",
            counterparty_iban="CH5604835012345678009",
            creditor_reference="RF18539007547034",
        ),
        BankTransaction(
            # No AcctSvcrRef: the NtryRef, with the account and the booking date
            bank_reference="CH9300762011623852957/20240210/N-0002",
            booked_on=date(2024, 2, 10),
            amount=D("-75.20"),
            currency="CHF",
            counterparty_name="Swisscom (Schweiz) AG",
            counterparty_iban="CH3908704016075473007",
            remittance_info="Rechnung 2024-02",
        ),
        BankTransaction(
            bank_reference="CH-20240220-0001",
            booked_on=date(2024, 2, 20),
            amount=D("120.00"),
            currency="CHF",
            counterparty_name="Bäckerei Kunz",
            counterparty_iban="CH4431999123000889012",
            remittance_info="Rechnung INV-2024-0107",
            creditor_reference="RF712348231",
        ),
        BankTransaction(
            bank_reference="CH-20240220-0002",
            booked_on=date(2024, 2, 20),
            amount=D("300.00"),
            currency="CHF",
            counterparty_name="Schreinerei Vogel GmbH",
            remittance_info="INV-2024-0108",
        ),
    ]


@pytest.mark.parametrize("version", ["09", "10", "11", "12", "13"])
def test_the_camt_053_versions_after_08_are_read(version: str) -> None:
    content = read("camt053_v08.xml").replace(
        b"camt.053.001.08", f"camt.053.001.{version}".encode()
    )
    assert parse_statement(content) == parse("camt053_v08.xml")


def test_a_camt_transaction_with_only_an_instructed_amount_in_the_account_currency() -> None:
    content = read("camt053_v02.xml").replace(
        b'<AmtDtls><TxAmt><Amt Ccy="EUR">800.00</Amt></TxAmt></AmtDtls>',
        b'<AmtDtls><InstdAmt><Amt Ccy="EUR">800.00</Amt></InstdAmt></AmtDtls>',
    )
    assert parse("camt053_v02.xml", content) == parse("camt053_v02.xml")


def test_a_camt_structured_remittance_text_is_kept_when_there_is_no_free_text() -> None:
    original = read("camt053_v08.xml")
    content = original.replace(
        b"</CdtrRefInf>", b"</CdtrRefInf><AddtlRmtInf>Acompte commande 17</AddtlRmtInf>", 1
    )
    assert content != original
    first = parse("camt053_v08.xml", content)[0]
    assert (first.remittance_info, first.creditor_reference) == (
        "Acompte commande 17",
        "RF18539007547034",
    )


@pytest.mark.parametrize("version", ["03", "04", "05", "06", "07"])
def test_the_camt_053_versions_between_02_and_08_are_read(version: str) -> None:
    content = read("camt053_v02.xml").replace(
        b"camt.053.001.02", f"camt.053.001.{version}".encode()
    )
    assert parse_statement(content) == parse("camt053_v02.xml")


def test_an_unknown_camt_namespace_is_refused() -> None:
    content = read("camt053_v02.xml").replace(b"camt.053.001.02", b"camt.053.001.99")
    with pytest.raises(StatementError, match="namespace"):
        parse_statement(content)


def test_a_camt_file_without_namespace_is_still_read() -> None:
    content = read("camt053_v08.xml").replace(
        b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"', b""
    )
    assert parse_statement(content) == parse("camt053_v08.xml")


def test_a_camt_file_of_two_accounts_with_the_same_references_keeps_every_entry() -> None:
    """Entries are read statement by statement, each with its account; the same bank
    reference in two accounts does not make the second account's entries duplicates."""
    v08 = read("camt053_v08.xml")
    start = v08.index(b"<Stmt>")
    end = v08.index(b"</Stmt>") + len(b"</Stmt>")
    second = v08[start:end].replace(b"CH9300762011623852957", b"CH5604835012345678009")
    content = v08[:end] + second + v08[end:]
    transactions = parse_statement(content)
    assert len(transactions) == 8
    assert [without_reference(tx) for tx in transactions[4:]] == [
        without_reference(tx) for tx in transactions[:4]
    ]
    assert len({tx.bank_reference for tx in transactions}) == 8
    assert transactions[5].bank_reference == "CH5604835012345678009/20240210/N-0002"


@pytest.mark.parametrize("cut", [0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_a_truncated_camt_file_is_refused_with_where_it_stops(cut: float) -> None:
    content = read("camt053_v02.xml")
    truncated = content[: int(len(content) * cut)]
    error = refused("camt053_v02.xml", truncated)
    assert error.where is not None
    assert error.where.startswith("line ")
    last_line = truncated.count(b"\n") + 1
    assert abs(int(error.where.removeprefix("line ")) - last_line) <= 1
    assert "cut short" in error.message


def test_a_truncated_camt_file_just_before_its_end_is_refused() -> None:
    content = read("camt053_v08.xml").rstrip()
    for size in (len(content) - 1, len(content) - len(b"</Document>")):
        refused("camt053_v08.xml", content[:size])


def test_a_corrupted_camt_amount_is_refused_with_the_entry() -> None:
    content = read("camt053_v02.xml").replace(
        b'<Amt Ccy="EUR">350.45</Amt>', b'<Amt Ccy="EUR">35O.45</Amt>'
    )
    error = refused("camt053_v02.xml", content)
    assert error.where is not None
    assert error.where.startswith("entry 2 (line ")
    assert "35O.45" in error.message


def test_a_camt_amount_with_more_decimals_than_the_currency_is_refused() -> None:
    content = read("camt053_v08.xml").replace(b">75.20<", b">75.205<")
    error = refused("camt053_v08.xml", content)
    assert error.where is not None
    assert error.where.startswith("entry 2")
    assert "decimals" in error.message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"<CdtDbtInd>DBIT</CdtDbtInd>\n        <Sts>BOOK", b"<Sts>BOOK", "CRDT or DBIT"),
        (
            b"<BookgDt><Dt>2024-01-16</Dt></BookgDt>\n        <ValDt><Dt>2024-01-16</Dt></ValDt>",
            b"",
            "booking date",
        ),
        (b"<BookgDt><Dt>2024-01-16</Dt>", b"<BookgDt><Dt>2024-13-16</Dt>", "2024-13-16"),
        (b'<Amt Ccy="EUR">350.45</Amt>', b"<Amt>350.45</Amt>", "currency"),
    ],
)
def test_a_camt_entry_missing_a_mandatory_field_is_refused_with_the_entry(
    old: bytes, new: bytes, expected: str
) -> None:
    content = read("camt053_v02.xml")
    assert old in content
    error = refused("camt053_v02.xml", content.replace(old, new, 1))
    assert error.where is not None
    assert error.where.startswith("entry 2")
    assert expected in error.message


def test_a_batched_camt_entry_whose_transactions_have_no_amount_is_refused() -> None:
    content = read("camt053_v02.xml").replace(
        b'<AmtDtls><TxAmt><Amt Ccy="EUR">800.00</Amt></TxAmt></AmtDtls>', b""
    )
    error = refused("camt053_v02.xml", content)
    assert error.where is not None
    assert error.where.startswith("entry 3")
    assert error.where.endswith("transaction 2")


def test_a_camt_file_with_a_doctype_and_entities_is_refused() -> None:
    content = read("camt053_v08.xml").replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    )
    content = content.replace(b"Rechnung 2024-02", b"&x;")
    with pytest.raises(StatementError, match="DOCTYPE"):
        parse_statement(content)


# --- MT940 --------------------------------------------------------------------------------


def test_an_mt940_file_gives_each_statement_line_with_its_details() -> None:
    transactions = parse("mt940.sta")

    assert transactions[0] == BankTransaction(
        bank_reference="BANKREF-0001",
        booked_on=date(2024, 1, 15),
        amount=D("1250.00"),
        currency="EUR",
        counterparty_name="Baeckerei Schmidt GmbH",  # ?32 and ?33
        counterparty_iban="DE44500105175407324931",  # ?31
        remittance_info="Rechnung INV-2024-0042 danke",  # ?20-?29, SVWZ
    )
    assert derived(transactions[1].bank_reference)  # NONREF
    assert without_reference(transactions[1]) == (
        date(2024, 1, 16),
        D("-89.90"),
        "EUR",
        "Stadtwerke Beispielstadt",
        "DE02120300000000202051",
        "Strom Januar",
        None,
    )
    assert transactions[2] == BankTransaction(
        bank_reference="BANKREF-0003",
        booked_on=date(2024, 1, 16),
        amount=D("500.00"),
        currency="EUR",
        remittance_info="Gutschrift Kunde 4711 Rechnung INV-2024-0043",  # free :86: text
    )
    assert [without_reference(tx) for tx in transactions[3:5]] == [
        (date(2024, 1, 17), D("-3.50"), "EUR", None, None, "KARTENZAHLUNG CAFE AM MARKT", None)
    ] * 2
    assert transactions[3].bank_reference != transactions[4].bank_reference
    assert transactions[5] == BankTransaction(  # the second statement of the file
        bank_reference="BANKREF-0009",
        booked_on=date(2024, 1, 18),
        amount=D("-100.00"),
        currency="EUR",
        counterparty_name="Hausverwaltung Weber",
        counterparty_iban="DE75512108001245126199",
        remittance_info="Miete Februar",
    )
    assert len(transactions) == 6


def test_an_mt940_booking_date_is_the_entry_date_not_the_value_date() -> None:
    content = read("mt940.sta").replace(b":61:2401160116CR500,00", b":61:2401150116CR500,00")
    assert parse("mt940.sta", content)[2].booked_on == date(2024, 1, 16)


@pytest.mark.parametrize("cut", [0.1, 0.3, 0.5, 0.6, 0.8])
def test_a_truncated_mt940_file_is_refused_with_where_it_stops(cut: float) -> None:
    content = read("mt940.sta")
    error = refused("mt940.sta", content[: int(len(content) * cut)])
    assert error.where is not None
    assert error.where.startswith("line ")


def test_an_mt940_file_cut_before_a_closing_balance_says_it_is_cut_short() -> None:
    content = read("mt940.sta")
    cut = content.index(b":62F:C240117")
    error = refused("mt940.sta", content[:cut])
    assert "cut short" in error.message
    lines_before = content[:cut].count(b"\n")
    assert error.where == f"line {lines_before}"


def test_an_mt940_line_that_does_not_parse_is_refused_with_its_line() -> None:
    content = read("mt940.sta").replace(b":61:2401160116CR500,00", b":61:24011X0116CR500,00")
    error = refused("mt940.sta", content)
    lines = content.split(b"\n")
    broken = next(i for i, line in enumerate(lines, start=1) if line.startswith(b":61:24011X"))
    assert error.where == f"line {broken}"


def test_a_corrupted_mt940_amount_is_refused_because_the_balances_do_not_add_up() -> None:
    content = read("mt940.sta").replace(b"DR89,90NDDT", b"DR98,90NDDT")
    error = refused("mt940.sta", content)
    closing = content[: content.index(b":62F:C240117")].count(b"\n") + 1
    assert error.where == f"line {closing}"
    assert "add up" in error.message


@pytest.mark.parametrize(("mark", "amount"), [("RC", "-89.90"), ("RD", "89.90")])
def test_an_mt940_reversal_has_the_sign_of_the_money_that_moves(mark: str, amount: str) -> None:
    content = read("mt940.sta").replace(b"0116DR89,90NDDT", f"0116{mark}89,90NDDT".encode())
    if mark == "RD":  # money back in: the closing balance is higher by twice the amount
        content = content.replace(b"EUR2653,10", b"EUR2832,90")
        content = content.replace(b"EUR2553,10", b"EUR2732,90")
    assert parse("mt940.sta", content)[1].amount == D(amount)


def test_an_mt940_statement_without_opening_balance_is_refused() -> None:
    content = read("mt940.sta").replace(b":60F:C240115EUR1000,00\n", b"")
    error = refused("mt940.sta", content)
    assert "opening balance" in error.message
    assert error.where == "line 1"


def test_an_mt940_file_with_windows_line_ends_reads_the_same() -> None:
    content = read("mt940.sta").replace(b"\n", b"\r\n")
    assert parse("mt940.sta", content) == parse("mt940.sta")


# --- OFX ----------------------------------------------------------------------------------


def test_an_ofx_1_sgml_file_gives_each_stmttrn_keyed_by_account_and_fitid() -> None:
    assert parse("ofx1_sgml.ofx") == [
        BankTransaction(
            bank_reference="999988:202401150001",
            booked_on=date(2024, 1, 15),
            amount=D("1200.00"),
            currency="USD",
            counterparty_name="ACME CORP",
            remittance_info="INVOICE INV-2024-0042",
        ),
        BankTransaction(
            bank_reference="999988:202401160002",
            booked_on=date(2024, 1, 16),
            amount=D("-45.99"),
            currency="USD",
            counterparty_name="OFFICE SUPPLIES INC",
        ),
        BankTransaction(
            bank_reference="999988:202401200003",
            booked_on=date(2024, 1, 20),  # midnight in Paris stays the 20th, not the 19th UTC
            amount=D("250.00"),
            currency="USD",
            counterparty_name="BISTRO PARIS",
            remittance_info="Invoice INV-2024-0044",
        ),
    ]


def test_an_ofx_2_xml_file_keeps_the_same_fitid_of_two_accounts_apart() -> None:
    assert parse("ofx2_xml.ofx") == [
        BankTransaction(
            bank_reference="12345678901:F-0001",
            booked_on=date(2024, 2, 5),
            amount=D("960.00"),
            currency="EUR",
            counterparty_name="Librairie Moreau",  # from PAYEE
            counterparty_iban="FR7610107001011234567890129",  # BANKACCTTO
            remittance_info="VIR SEPA Facture INV-2024-0060",
        ),
        BankTransaction(
            bank_reference="12345678901:F-0002",
            booked_on=date(2024, 2, 29),
            amount=D("-7.50"),
            currency="EUR",
            counterparty_name="FRAIS TENUE DE COMPTE",
        ),
        BankTransaction(
            bank_reference="4970000000001234:F-0001",  # the credit card account
            booked_on=date(2024, 2, 12),
            amount=D("-19.90"),
            currency="EUR",
            counterparty_name="HEBERGEUR WEB",
            remittance_info="Abonnement fevrier",
        ),
    ]


@pytest.mark.parametrize("name", ["ofx1_sgml.ofx", "ofx2_xml.ofx"])
@pytest.mark.parametrize("cut", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_a_truncated_ofx_file_is_refused(name: str, cut: float) -> None:
    content = read(name)
    error = refused(name, content[: int(len(content) * cut)])
    assert "cut short" in error.message or "broken" in error.message


def test_an_ofx_transaction_with_a_bad_amount_is_refused() -> None:
    content = read("ofx1_sgml.ofx").replace(b"<TRNAMT>-45.99", b"<TRNAMT>-45,9x")
    error = refused("ofx1_sgml.ofx", content)
    assert error.where == "transaction FITID=202401160002"
    assert "'-45,9x'" in error.message


def test_an_ofx_transaction_without_fitid_is_refused() -> None:
    content = read("ofx1_sgml.ofx").replace(b"<FITID>202401160002\n", b"")
    error = refused("ofx1_sgml.ofx", content)
    assert error.where == "transaction 2"
    assert "FITID" in error.message


# --- CSV ----------------------------------------------------------------------------------


def test_a_semicolon_csv_with_decimal_commas_is_read_with_its_mapping() -> None:
    transactions = parse("fr_semicolon.csv")

    assert transactions[0] == BankTransaction(
        bank_reference="REF-001",
        booked_on=date(2024, 1, 15),
        amount=D("1234.56"),  # "1.234,56"
        currency="EUR",
        counterparty_name="Boulangerie Martin",
        counterparty_iban="FR7630006000011234567890189",
        remittance_info="VIR SEPA Facture INV-2024-0042",
    )
    assert without_reference(transactions[1]) == (
        date(2024, 1, 16),
        D("-89.90"),
        "EUR",
        "EDF",
        None,
        "PRLV EDF",
        None,
    )
    assert derived(transactions[1].bank_reference)  # empty reference cell
    assert without_reference(transactions[2]) == without_reference(transactions[3])
    assert transactions[2].bank_reference != transactions[3].bank_reference
    assert transactions[4] == BankTransaction(
        bank_reference="REF-002",
        booked_on=date(2024, 1, 18),
        amount=D("1000.00"),  # "1 000,00"
        currency="EUR",  # "eur"
        counterparty_name="Atelier Petit",
        remittance_info="VIR Atelier; acompte",  # a quoted delimiter
    )
    assert len(transactions) == 5  # the blank last line is no row


def test_a_comma_csv_with_the_default_headers_needs_no_mapping() -> None:
    transactions = parse("default_comma.csv")
    assert transactions[:2] == [
        BankTransaction(
            bank_reference="TX-9001",
            booked_on=date(2024, 2, 1),
            amount=D("1250.00"),
            currency="GBP",
            counterparty_name="Smith, Jones & Co",
            counterparty_iban="GB29NWBK60161331926819",
            remittance_info="Invoice INV-2024-0070, thank you",
            creditor_reference="RF18539007547034",
        ),
        BankTransaction(
            bank_reference="TX-9002",
            booked_on=date(2024, 2, 2),
            amount=D("-12.30"),
            currency="GBP",
            counterparty_name="Stationery Ltd",
            remittance_info="Paper",
        ),
    ]
    yen = transactions[2]
    assert (yen.amount, str(yen.amount), yen.currency) == (D("1000"), "1000", "JPY")


def test_a_csv_with_credit_and_debit_columns_a_preamble_and_windows_1252_is_read() -> None:
    transactions = parse("de_credit_debit.csv")
    assert [without_reference(tx) for tx in transactions] == [
        (
            date(2024, 3, 4),
            D("2380.00"),
            "EUR",
            "Müller GmbH",
            None,
            "Rechnung INV-2024-0080",
            None,
        ),
        (date(2024, 3, 5), D("-49.99"), "EUR", "Telekom", None, "Mobilfunk März", None),
    ]


@pytest.mark.parametrize(
    ("separator", "text", "expected"),
    [
        (",", "1.234,56", "1234.56"),
        (",", "1 234 567,8", "1234567.80"),
        (",", "-0,5", "-0.50"),
        (",", "12,00-", "-12.00"),
        (",", "+7", "7.00"),
        (".", "1,234.56", "1234.56"),
        (".", "1'234.56", "1234.56"),
        (".", "-1234.5", "-1234.50"),
        (".", "0.99", "0.99"),
        (",", "12,50 €", "12.50"),
        (",", "- 1 234,50 €", "-1234.50"),
        (".", "$1,234.56", "1234.56"),
        (".", "\u221212.50", "-12.50"),
        (".", "(12.50)", "-12.50"),
    ],
)
def test_csv_amounts_take_thousands_separators_and_signs(
    separator: str, text: str, expected: str
) -> None:
    mapping = CsvMapping.from_dict({"fixed_currency": "EUR", "decimal_separator": separator})
    content = f'booked_on;amount\n2024-01-02;"{text}"\n'.encode()
    [tx] = parse_statement(content, csv_mapping=mapping)
    assert str(tx.amount) == expected


@pytest.mark.parametrize(
    ("separator", "text"),
    [
        (".", "12,50"),  # a decimal comma in a file said to use dots: not 1250
        (",", "12.50"),
        (",", "1.23,4"),
        (".", "12.5.0"),
        (".", "abc"),
        (".", "1e3"),
        (".", "--3"),
        (".", "NaN"),
        (".", "1.001"),  # EUR has two decimals
        (".", "-(12.50)"),
        (".", "(12.50-)"),
        (".", "€"),
        (".", "()"),
    ],
)
def test_a_csv_row_with_a_bad_amount_is_refused_with_its_line(separator: str, text: str) -> None:
    mapping = CsvMapping.from_dict({"fixed_currency": "EUR", "decimal_separator": separator})
    content = f'booked_on;amount\n2024-01-02;1\n\n2024-01-03;"{text}"\n'.encode()
    with pytest.raises(StatementError) as caught:
        parse_statement(content, csv_mapping=mapping)
    assert caught.value.where == "line 4"


@pytest.mark.parametrize(
    ("date_format", "text", "expected"),
    [
        ("iso", "2024-03-01", date(2024, 3, 1)),
        ("iso", "2024-03-01T10:00:00+01:00", date(2024, 3, 1)),
        ("dd/mm/yyyy", "01/03/2024", date(2024, 3, 1)),
        ("dd.mm.yyyy", "01.03.2024", date(2024, 3, 1)),
        ("%d %b %Y", "01 Mar 2024", date(2024, 3, 1)),
        ("dd/mm/yyyy", "01/03/2024 10:22", date(2024, 3, 1)),
    ],
)
def test_csv_dates_follow_the_mapping_format(date_format: str, text: str, expected: date) -> None:
    mapping = CsvMapping.from_dict({"date_format": date_format, "fixed_currency": "EUR"})
    [tx] = parse_statement(f"booked_on,amount\n{text},1\n".encode(), csv_mapping=mapping)
    assert tx.booked_on == expected


@pytest.mark.parametrize(
    ("date_format", "text"),
    [("iso", "01/03/2024"), ("iso", "2024-02-30"), ("dd/mm/yyyy", "2024-03-01"), ("iso", "")],
)
def test_a_csv_row_with_a_bad_date_is_refused_with_its_line(date_format: str, text: str) -> None:
    mapping = CsvMapping.from_dict({"date_format": date_format, "fixed_currency": "EUR"})
    with pytest.raises(StatementError) as caught:
        parse_statement(f"booked_on,amount\n{text},1\n".encode(), csv_mapping=mapping)
    assert caught.value.where == "line 2"


def test_a_csv_without_a_mapped_column_is_refused_naming_it() -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement(b"Date;Montant\n2024-01-02;3\n")
    assert caught.value.where == "line 1"
    assert "'booked_on'" in caught.value.message
    assert "Date, Montant" in caught.value.message


def test_a_csv_row_cut_short_or_with_extra_fields_is_refused_with_its_line() -> None:
    content = read("default_comma.csv")
    cut = content[: content.rindex(b",Tanaka")]
    error = refused("default_comma.csv", cut)
    assert error.where == "line 4"
    with pytest.raises(StatementError) as caught:
        parse_statement(b"booked_on,amount,currency\n2024-01-01,1,EUR,surplus\n")
    assert caught.value.where == "line 2"


def test_a_csv_row_whose_currency_is_not_an_iso_code_is_refused() -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement(b"booked_on,amount,currency\n2024-01-01,1,EUR\n2024-01-01,1,euro\n")
    assert caught.value.where == "line 3"


@pytest.mark.parametrize("amount", ["1000000000000.00", "-1000000000000", "5000000000000000"])
def test_a_statement_amount_the_json_feed_refuses_is_refused_too(amount: str) -> None:
    """The limit of every amount the service takes (relance.common.money.MAX_AMOUNT)."""
    content = f"booked_on,amount,currency\n2024-01-01,12.50,EUR\n2024-01-02,{amount},EUR\n"
    with pytest.raises(StatementError) as caught:
        parse_statement(content.encode())
    assert (caught.value.where, caught.value.message) == (
        "line 3",
        f"amount {amount} is out of range",
    )


def test_an_amount_just_below_the_limit_is_read() -> None:
    [tx] = parse_statement(b"booked_on,amount,currency\n2024-01-02,-999999999999.99,EUR\n")
    assert tx.amount == D("-999999999999.99")


def test_a_utf_16_tab_separated_export_is_read() -> None:
    """What Excel writes as "Unicode text"."""
    text = "booked_on\tamount\tcurrency\tcounterparty_name\r\n2024-01-02\t5\tEUR\tZoë\r\n"
    [tx] = parse_statement(text.encode("utf-16"))
    assert (tx.amount, tx.counterparty_name) == (D("5.00"), "Zoë")


def test_a_utf_16_camt_file_is_read() -> None:
    content = read("camt053_v08.xml").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert parse_statement(content.encode("utf-16")) == parse("camt053_v08.xml")


def test_a_csv_delimiter_can_be_given() -> None:
    mapping = CsvMapping.from_dict({"delimiter": "\t", "fixed_currency": "EUR"})
    [tx] = parse_statement(
        b"booked_on\tamount\tremittance_info\n2024-01-02\t5\ta;b,c\n", csv_mapping=mapping
    )
    assert (tx.amount, tx.remittance_info) == (D("5.00"), "a;b,c")


@pytest.mark.parametrize(
    "raw",
    [
        {"amount_column": "Montant"},
        {"decimal_separator": ";"},
        {"date_format": "dd-mm"},
        {"delimiter": "ab"},
        {"fixed_currency": "euro"},
        {"credit": "Haben"},
        {"credit": "Haben", "debit": "Soll", "amount": "Betrag"},
        {"amount": None},
        {"currency": None},
        {"skip_lines": -1},
        {"skip_lines": "2"},
        {"booked_on": 3},
        {"booked_on": None},
        {"encoding": "no-such-encoding"},
    ],
)
def test_a_bad_csv_mapping_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(StatementError) as caught:
        CsvMapping.from_dict(raw)
    assert caught.value.where == "mapping"


def test_a_csv_mapping_rejects_what_is_not_an_object() -> None:
    with pytest.raises(StatementError):
        CsvMapping.from_dict(["booked_on"])  # type: ignore[arg-type]


# --- References ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_importing_the_same_file_again_gives_the_same_references(name: str) -> None:
    first = parse(name)
    again = parse(name)
    assert first
    assert [tx.bank_reference for tx in again] == [tx.bank_reference for tx in first]
    assert len({tx.bank_reference for tx in first}) == len(first)


def test_a_derived_reference_does_not_depend_on_the_rest_of_the_file() -> None:
    """A statement downloaded again with more days in it keeps the earlier references."""
    content = read("fr_semicolon.csv")
    header, *rows = content.split(b"\r\n")
    shorter = b"\r\n".join([header, *rows[1:4]]) + b"\r\n"
    longer = parse("fr_semicolon.csv", content)
    assert [tx.bank_reference for tx in parse("fr_semicolon.csv", shorter)] == [
        tx.bank_reference for tx in longer[1:4]
    ]


def test_a_derived_reference_tells_accounts_apart() -> None:
    one = parse("fr_semicolon.csv", account="FR76 3000 6000 0112 3456 7890 189")
    same = parse("fr_semicolon.csv", account="fr7630006000011234567890189")
    other = parse("fr_semicolon.csv", account="FR7610107001011234567890129")
    assert [tx.bank_reference for tx in one] == [tx.bank_reference for tx in same]
    assert one[1].bank_reference != other[1].bank_reference
    assert one[0].bank_reference == other[0].bank_reference == "REF-001"  # the bank's own


def test_identical_transactions_on_the_same_day_stay_distinct_and_ordered() -> None:
    row = b"2024-05-02,-2.40,EUR,,Coffee\n"
    content = b"booked_on,amount,currency,bank_reference,remittance_info\n" + row * 3
    transactions = parse_statement(content)
    assert len({tx.bank_reference for tx in transactions}) == 3
    two = parse_statement(b"booked_on,amount,currency,bank_reference,remittance_info\n" + row * 2)
    assert [tx.bank_reference for tx in two] == [tx.bank_reference for tx in transactions[:2]]


# --- Large files --------------------------------------------------------------------------


def test_a_large_csv_is_read_with_a_progress_line_every_10000_transactions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = "".join(
        f"2024-01-{1 + i % 28:02d},{i}.{i % 100:02d},EUR,,Client {i}\n" for i in range(25_000)
    )
    content = ("booked_on,amount,currency,bank_reference,remittance_info\n" + rows).encode()
    transactions = parse_statement(content)
    assert len(transactions) == 25_000
    assert transactions[12_345].amount == D("12345.45")
    output = capsys.readouterr().out
    assert output.count("statement parsing") == 2
    assert "transactions=20000" in output


def test_a_camt_file_of_many_entries_is_read_entry_by_entry() -> None:
    """Each entry is forgotten once read; the result must not suffer from it."""
    content = read("camt053_v02.xml")
    start = content.index(b"<!-- 1:")
    end = content.index(b"<!-- 2:")
    entry = content[start:end]
    entries = b"".join(entry.replace(b"2024011500001", f"R{i:07d}".encode()) for i in range(3_000))
    big = content[:start] + entries + content[content.index(b"</Stmt>") :]
    transactions = parse_statement(big)
    assert len(transactions) == 3_000
    assert [tx.bank_reference for tx in transactions[:2]] == ["R0000000", "R0000001"]
    assert transactions[-1].bank_reference == "R0002999"
    assert {without_reference(tx) for tx in transactions} == {
        without_reference(parse("camt053_v02.xml")[0])
    }


# --- Nothing but StatementError escapes ---------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=2000))
def test_random_bytes_give_a_list_or_a_statement_error(content: bytes) -> None:
    try:
        result = parse_statement(content)
    except StatementError:
        return
    assert isinstance(result, list)
    assert all(storable(tx) for tx in result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(ALL_FILES),
    data=st.data(),
)
def test_truncated_or_mutated_files_give_a_list_or_a_statement_error(
    name: str, data: st.DataObject
) -> None:
    content = bytearray(read(name))
    position = data.draw(st.integers(min_value=0, max_value=len(content)))
    action = data.draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
    if action == "cut":
        content = content[:position]
    elif action == "flip" and position < len(content):
        content[position] = data.draw(st.integers(min_value=0, max_value=255))
    elif action == "insert":
        content[position:position] = data.draw(st.binary(min_size=1, max_size=5))
    else:
        del content[position : position + data.draw(st.integers(min_value=1, max_value=40))]
    try:
        result = parse(name, bytes(content))
    except StatementError as error:
        message = str(error)
    else:
        assert all(isinstance(tx, BankTransaction) and storable(tx) for tx in result)
        return
    assert message


def storable(tx: BankTransaction) -> bool:
    """No text of the transaction holds what PostgreSQL cannot store."""
    texts = [v for v in dataclasses.astuple(tx) if isinstance(v, str)]
    return all(first_unstorable(text) is None for text in texts)


# --- Text the database cannot store: refused, saying where -------------------------------

CSV = b"booked_on,amount,currency,remittance_info\n2026-03-01,10.00,EUR,FA-1\n"
MT940 = (
    b":20:STMT\n:25:FR7630006000011234567890189\n:28C:1\n:60F:C260301EUR0,00\n"
    b":61:2603010301C10,00NTRFNONREF\n:86:FA-1\n:62F:C260301EUR10,00\n"
)


@pytest.mark.parametrize(
    ("content", "mapping", "what", "where"),
    [
        (CSV.replace(b"currency", b"curr\x00ency"), None, "NUL", "line 1"),
        (CSV.replace(b"FA-1", b"FA\x001"), None, "NUL", "line 2"),
        # an encoding the client chose can decode to a lone surrogate
        (CSV.replace(b"FA-1", b"FA\\ud800"), {"encoding": "unicode_escape"}, "surrogate", "line 2"),
        (MT940.replace(b"FA-1", b"FA\x001"), None, "NUL", "line 6"),
    ],
)
def test_unstorable_text_in_a_file_is_refused_with_its_line(content, mapping, what, where):
    csv_mapping = CsvMapping.from_dict(mapping) if mapping else None
    with pytest.raises(StatementError) as refused:
        parse_statement(content, csv_mapping=csv_mapping)
    assert what in refused.value.message
    assert refused.value.where == where


@pytest.mark.parametrize("name", ["ofx1_sgml.ofx", "ofx2_xml.ofx"])
def test_a_nul_a_library_lets_through_is_refused_with_its_transaction(name):
    content = re.sub(rb"<NAME>(\w)", lambda m: m.group(0) + b"\x00", read(name), count=1)
    with pytest.raises(StatementError) as refused:
        parse(name, content)
    assert "NUL" in refused.value.message
    assert refused.value.where == "transaction 1"


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["camt053_v02.xml", "camt053_v08.xml", "ofx1_sgml.ofx", "ofx2_xml.ofx"]),
    data=st.data(),
)
def test_a_structured_file_cut_anywhere_is_refused(name: str, data: st.DataObject) -> None:
    content = read(name).rstrip()
    position = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
    with pytest.raises(StatementError):
        parse(name, content[:position])


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_an_mt940_file_cut_inside_its_statements_is_refused(data: st.DataObject) -> None:
    content = read("mt940.sta")
    last_closing = content.rindex(b":62F:")
    position = data.draw(st.integers(min_value=0, max_value=last_closing))
    first_closing = content.index(b":62F:")
    first_end = content.index(b"\n", first_closing)
    if first_closing <= position < content.index(b":20:", first_end) + len(b":20:"):
        return  # cut between the two statements: the first is whole (see the README)
    with pytest.raises(StatementError):
        parse("mt940.sta", content[:position])


def test_an_mt940_file_in_its_swift_envelope_reads_the_same() -> None:
    body = read("mt940.sta").replace(b"-\n:20:", b":20:").rstrip(b"-\n")
    content = (
        b"{1:F01COBADEFFAXXX0000000000}{2:O9401200240118COBADEFFAXXX00000000002401181200N}{4:\n"
        + body
        + b"\n-}{5:{CHK:0123456789AB}}\n"
    )
    assert parse("mt940.sta", content) == parse("mt940.sta")


def test_a_batch_repeating_one_reference_in_each_transaction_keeps_them_apart() -> None:
    content = read("camt053_v08.xml").replace(b"CH-20240220-0002", b"CH-20240220-0001")
    transactions = parse("camt053_v08.xml", content)
    assert [tx.bank_reference for tx in transactions[2:]] == [
        "CH9300762011623852957/20240220/N-0003/1",
        "CH9300762011623852957/20240220/N-0003/2",
    ]


def test_a_bank_reference_given_to_two_different_transactions_keeps_both() -> None:
    """A column that is not unique after all must not make the second payment a duplicate."""
    content = (
        b"booked_on,amount,currency,bank_reference,remittance_info\n"
        b"2024-04-02,100.00,EUR,VIR SEPA,INV-1\n"
        b"2024-04-02,250.00,EUR,VIR SEPA,INV-2\n"
        b"2024-04-03,80.00,EUR,TX-1,INV-3\n"
    )
    transactions = parse_statement(content)
    first, second, third = (tx.bank_reference for tx in transactions)
    assert derived(first)
    assert derived(second)
    assert first != second
    assert third == "TX-1"
    # Stable: the same file again, or the rows in another order, give the same references.
    assert [tx.bank_reference for tx in parse_statement(content)] == [first, second, third]
    lines = content.split(b"\n")
    swapped = b"\n".join([lines[0], lines[2], lines[1], lines[3]]) + b"\n"
    assert [tx.bank_reference for tx in parse_statement(swapped)][:2] == [second, first]


def test_the_same_transaction_listed_twice_keeps_one_reference() -> None:
    """Overlapping statements in one file: the copy is the same transaction."""
    content = read("camt053_v08.xml")
    start = content.index(b"<!-- 2:")
    end = content.index(b"<!-- 3:")
    doubled = content[:end] + content[start:end] + content[end:]
    references = [tx.bank_reference for tx in parse("camt053_v08.xml", doubled)]
    second = "CH9300762011623852957/20240210/N-0002"
    assert references == ["CH-20240205-0001-T1", second, second, *references[3:]]
    assert len(references) == 5
