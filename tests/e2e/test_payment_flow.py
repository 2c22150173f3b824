"""Payments from outside reach every service as they do under `make dev`: a bank transfer
imported into the payment-matcher, and a payment a partner recorded on its side, each make
the invoice paid in invoice-api and cancel the reminders still waiting in the scheduler."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from relance.common.signing import signed_headers

from .conftest import DevRun, Organization, eventually

pytestmark = pytest.mark.e2e


def test_a_bank_transfer_and_a_partners_payment_stop_the_reminders(dev_run: DevRun):
    dev_run.wait_ready()
    api = f"http://127.0.0.1:{dev_run.port_base}"
    scheduler = f"http://127.0.0.1:{dev_run.port_base + 1}"
    matcher = f"http://127.0.0.1:{dev_run.port_base + 3}"
    with httpx.Client(timeout=10) as client:
        org = Organization(client, dev_run)
        auth = org.auth
        new_sent_invoice = org.sent_invoice

        def reminders_stopped(invoice: dict[str, Any]) -> None:
            shown = eventually(
                lambda: client.get(f"{api}/v1/invoices/{invoice['id']}", headers=auth).json(),
                lambda found: found["status"] == "paid",
            )
            assert (shown["status"], shown["balance"]) == ("paid", "0.00")
            plan = eventually(
                lambda: client.get(
                    f"{scheduler}/v1/invoices/{invoice['id']}/plan", headers=auth
                ).json(),
                lambda found: (
                    "items" in found and all(s["status"] != "planned" for s in found["items"])
                ),
            )
            statuses = {s["kind"]: s["status"] for s in plan["items"]}
            assert statuses["due"] == "cancelled", plan

        # 1. a bank transfer quoting the invoice's reference pays it, by itself
        by_bank = new_sent_invoice("FA-E2E-10", payment_reference="RF18539007547034")
        # the matcher may read the invoice's invoice.sent before or after the import: a
        # credit that came first waits and is matched when the invoice arrives, so what a
        # client sees is the transaction turning matched, either at once or a moment later
        item = {
            "bank_reference": "E2E-1",
            "booked_on": time.strftime("%Y-%m-%d"),
            "amount": "1200.00",
            "currency": "EUR",
            "creditor_reference": "RF18539007547034",
        }
        # a new organization's key reaches the matcher a moment after invoice-api gave it
        imported = eventually(
            lambda: client.post(
                f"{matcher}/v1/bank-transactions", json={"items": [item]}, headers=auth
            ),
            lambda answer: answer.status_code != 401,
        )
        assert imported.status_code == 202, imported.text
        assert imported.json()["imported"] == 1
        transaction = eventually(
            lambda: client.get(f"{matcher}/v1/bank-transactions/E2E-1", headers=auth).json(),
            lambda found: found.get("state") == "matched",
        )
        assert transaction["state"] == "matched", transaction
        assert [a["invoice_id"] for a in transaction["allocations"]] == [by_bank["id"]]
        reminders_stopped(by_bank)
        activity = client.get(f"{api}/v1/invoices/{by_bank['id']}/activity", headers=auth)
        sources = [i["detail"].get("source") for i in activity.json()["items"]]
        assert "bank" in sources

        # 2. a payment the partner recorded, sent signed, pays the other one
        by_partner = new_sent_invoice("FA-E2E-11", external_id="qb-11")
        secret = client.post(f"{api}/v1/partner-secret", headers=auth).json()["secret"]
        body = json.dumps(
            {
                "type": "payment.recorded",
                "data": {"external_id": "qb-11", "amount": "1200.00", "paid_on": "2026-01-05"},
            }
        )
        signed = signed_headers(secret, "msg_e2e_1", datetime.now(UTC), body)
        answer = client.post(f"{api}/v1/partner-events", content=body, headers={**auth, **signed})
        assert answer.status_code == 200, answer.text
        reminders_stopped(by_partner)
