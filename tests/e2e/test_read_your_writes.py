"""A client that reads right after a write sees it, on the system as `make dev` runs it (real
HTTP, real uvicorn): a new organization's key works at once on invoice-api, a new invoice
can be read at once, a payment shows in the balance of the very next read. A thousand
times in a row, not one miss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from relance.devstack.supervisor import DEV_ADMIN_TOKEN

from .conftest import DevRun

pytestmark = pytest.mark.e2e

ROUNDS = 1000


def test_every_write_is_readable_by_the_very_next_request(dev_run: DevRun):
    dev_run.wait_ready()
    api = f"http://127.0.0.1:{dev_run.port_base}"
    sent_at = datetime.now(UTC) - timedelta(minutes=5)  # in the past whatever the hour
    today = sent_at.date().isoformat()
    misses: list[str] = []
    with httpx.Client(base_url=api, timeout=10) as client:
        for round_ in range(ROUNDS):
            created = client.post(
                "/v1/organizations",
                json={"name": f"Atelier {round_}"},
                headers={"X-Admin-Token": DEV_ADMIN_TOKEN},
            )
            assert created.status_code == 201, created.text
            auth = {"Authorization": f"Bearer {created.json()['api_key']}"}

            customer = client.post("/v1/customers", json={"name": "Martin"}, headers=auth)
            if customer.status_code != 201:
                misses.append(f"round {round_}: new key → {customer.status_code}")
                continue
            invoice = client.post(
                "/v1/invoices",
                json={
                    "customer_id": customer.json()["id"],
                    "number": f"FA-{round_}",
                    "issue_date": today,
                    "due_date": today,
                    "currency": "EUR",
                    "total": "100.00",
                    "sent_at": sent_at.isoformat(),
                },
                headers=auth,
            )
            if invoice.status_code != 201:
                misses.append(f"round {round_}: new customer → {invoice.text}")
                continue
            path = f"/v1/invoices/{invoice.json()['id']}"
            read = client.get(path, headers=auth)
            if read.status_code != 200:
                misses.append(f"round {round_}: new invoice → {read.status_code}")
                continue
            paid = client.post(
                f"{path}/payments", json={"amount": "40.00", "paid_on": today}, headers=auth
            )
            if paid.status_code != 201:
                misses.append(f"round {round_}: payment → {paid.text}")
                continue
            balance = client.get(path, headers=auth).json()["balance"]
            if balance != "60.00":
                misses.append(f"round {round_}: balance after a payment of 40 → {balance}")
    assert misses == []
