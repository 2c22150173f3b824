"""Statement files in (POST /v1/bank-statements): all or nothing per file, a re-import or an
overlapping statement creates no duplicate, and the credits are matched as JSON ones are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FILES = Path(__file__).parent.parent / "unit" / "statements"
FR_MAPPING = {
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


def read(name: str) -> bytes:
    return (FILES / name).read_bytes()


@pytest.mark.parametrize(
    "name", ["camt053_v02.xml", "camt053_v08.xml", "mt940.sta", "ofx1_sgml.ofx", "ofx2_xml.ofx"]
)
async def test_each_format_imports_and_a_second_upload_is_all_duplicates(matcher, name):
    first = await matcher.upload(read(name), filename=name)
    again = await matcher.upload(read(name), filename=name)

    assert first.status_code == 202, first.text
    imported = first.json()["imported"]
    assert imported >= 2
    assert first.json()["debits"] >= 1
    assert (again.json()["imported"], again.json()["duplicates"]) == (0, imported)
    assert await matcher.count("bank_transactions") == imported


async def test_a_csv_with_its_column_mapping_imports_and_pays_the_invoice_it_names(matcher):
    invoice = await matcher.invoice(number="INV-2024-0042", total="1234.56")

    answer = await matcher.upload(
        read("fr_semicolon.csv"), filename="releve.csv", mapping=json.dumps(FR_MAPPING)
    )

    assert answer.status_code == 202, answer.text
    assert answer.json()["imported"] == 5
    assert answer.json()["matched"] == 1
    shown = await matcher.transaction("REF-001")
    assert shown["allocations"] == [{"invoice_id": str(invoice), "amount": "1234.56"}]


async def test_a_camt_credit_with_a_structured_reference_pays_its_invoice(matcher):
    invoice = await matcher.invoice(
        total="1500.00", currency="CHF", payment_reference="RF18539007547034", ibans=()
    )

    answer = await matcher.upload(read("camt053_v08.xml"))

    assert answer.json()["matched"] >= 1
    (event,) = await matcher.events("payment.matched")
    assert (event["invoice_id"], event["amount"], event["currency"]) == (
        str(invoice),
        "1500.00",
        "CHF",
    )


@pytest.mark.parametrize("name", ["camt053_v08.xml", "mt940.sta", "ofx2_xml.ofx"])
async def test_a_truncated_file_is_a_422_that_says_where_and_imports_nothing(matcher, name):
    content = read(name)

    answer = await matcher.upload(content[: len(content) * 2 // 3], filename=name)

    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "file"]
    assert problem["msg"]
    assert await matcher.count("bank_transactions") == 0


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ("{not json", "not JSON"),
        ('["Date"]', "mapping"),
        (json.dumps({**FR_MAPPING, "amount": "Betrag"}), "Betrag"),
        (json.dumps({**FR_MAPPING, "colour": "blue"}), "colour"),
    ],
)
async def test_a_bad_csv_mapping_is_a_422_saying_what(matcher, mapping, says):
    answer = await matcher.upload(read("fr_semicolon.csv"), filename="r.csv", mapping=mapping)

    assert answer.status_code == 422, answer.text
    assert says in json.dumps(answer.json()["detail"])
    assert await matcher.count("bank_transactions") == 0


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02 not a statement", b"<Document/>"])
async def test_a_file_that_is_no_statement_is_a_422(matcher, content):
    answer = await matcher.upload(content, filename="x.bin")

    assert answer.status_code == 422, answer.text


async def test_a_file_over_20_mib_is_a_413(matcher):
    answer = await matcher.upload(b"x" * (20 * 1024 * 1024 + 1), filename="big.csv")

    assert answer.status_code == 413


async def test_an_upload_without_a_file_is_a_422(matcher):
    answer = await matcher.client.post(
        "/v1/bank-statements", data={"mapping": "{}"}, headers=matcher.headers()
    )

    assert answer.status_code == 422
