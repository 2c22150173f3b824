"""Two organizations: neither can see, list, change or even confirm the existence of the
other's customers and invoices."""

from __future__ import annotations

import pytest


@pytest.fixture
async def two_organizations(api):
    """Organization A with a customer and a sent invoice; the client then acts as B."""
    await api.as_new_organization(name="A")
    customer = await api.customer(external_id="shared-ext")
    invoice = await api.sent_invoice(customer_id=customer["id"], number="FA-1")
    key_a = api.key
    await api.as_new_organization(name="B")
    own = await api.sent_invoice(number="FB-1")
    return {"customer": customer, "invoice": invoice, "own": own, "key_a": key_a}


FOREIGN_CALLS = [
    ("get", "/v1/customers/{customer}", None),
    ("patch", "/v1/customers/{customer}", {"name": "Taken over"}),
    ("get", "/v1/invoices/{invoice}", None),
    ("patch", "/v1/invoices/{invoice}", {"due_date": "2026-12-31"}),
    ("post", "/v1/invoices/{invoice}/send", None),
    ("post", "/v1/invoices/{invoice}/payments", {"amount": "1.00", "paid_on": "2026-03-03"}),
    ("post", "/v1/invoices/{invoice}/payment-schedule", {"planned_on": "2026-03-20"}),
    ("post", "/v1/invoices/{invoice}/reminders/suspend", None),
    ("post", "/v1/invoices/{invoice}/collection", None),
    ("get", "/v1/invoices/{invoice}/reminders", None),
    ("get", "/v1/invoices/{invoice}/activity", None),
]


@pytest.mark.parametrize(("method", "template", "body"), FOREIGN_CALLS)
async def test_another_organizations_resource_answers_404(
    api, two_organizations, method, template, body
):
    path = template.format(
        customer=two_organizations["customer"]["id"], invoice=two_organizations["invoice"]["id"]
    )
    call = getattr(api, method)
    answer = await (call(path, body) if method != "get" else call(path))
    assert answer.status_code == 404, answer.text

    api.key = two_organizations["key_a"]
    untouched = (await api.get(f"/v1/invoices/{two_organizations['invoice']['id']}")).json()
    assert untouched["paid"] == "0.00"
    assert untouched["reminders_suspended"] is False
    assert untouched["status"] == "not_due"
    assert untouched["due_date"] == "2026-03-31"


async def test_lists_and_reports_show_only_the_callers_own_records(api, two_organizations):
    invoices = (await api.get("/v1/invoices")).json()["items"]
    assert [i["id"] for i in invoices] == [two_organizations["own"]["id"]]
    customers = (await api.get("/v1/customers")).json()["items"]
    assert two_organizations["customer"]["id"] not in {c["id"] for c in customers}
    filtered = await api.get("/v1/invoices", customer_id=two_organizations["customer"]["id"])
    assert filtered.json()["items"] == []
    report = (await api.get("/v1/reports/aging")).json()["buckets"]
    assert sum(b["invoice_count"] for b in report.values()) == 1


async def test_an_invoice_cannot_be_made_for_another_organizations_customer(api, two_organizations):
    answer = await api.post(
        "/v1/invoices",
        {
            "customer_id": two_organizations["customer"]["id"],
            "number": "FB-2",
            "issue_date": "2026-03-02",
            "due_date": "2026-03-31",
            "total": "10.00",
        },
    )
    assert answer.status_code == 422
    assert "no such customer" in answer.text


async def test_numbers_and_external_ids_are_per_organization(api, two_organizations):
    assert (await api.invoice(number="FA-1"))["number"] == "FA-1"
    assert (await api.customer(external_id="shared-ext"))["external_id"] == "shared-ext"
