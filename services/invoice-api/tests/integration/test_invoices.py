"""Invoices over HTTP: drafts, sending, import, validation, statuses that follow the
calendar of the organization, payments, schedules, suspension, lists and the aging report."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from relance.common.db import asyncpg_dsn


async def test_a_new_invoice_is_a_draft_with_its_amounts(api):
    await api.as_new_organization()
    invoice = await api.invoice(total="1200.5", invoice_text="Pain de campagne, mars")
    assert invoice["status"] == "draft"
    assert (invoice["total"], invoice["paid"], invoice["balance"]) == ("1200.50", "0.00", "1200.50")
    assert invoice["sent_at"] is None
    assert invoice["next_step"] is None
    assert invoice["customer_name"] == "Boulangerie Martin"


async def test_sending_makes_it_not_due_and_a_second_send_is_a_conflict(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    assert invoice["status"] == "not_due"
    assert invoice["sent_at"] == "2026-03-02T09:00:00Z"
    again = await api.post(f"/v1/invoices/{invoice['id']}/send")
    assert again.status_code == 409
    assert "already sent" in again.json()["detail"]


async def test_an_imported_invoice_is_sent_as_of_its_sent_at(api):
    await api.as_new_organization()
    invoice = await api.invoice(
        sent_at="2026-02-01T10:00:00+01:00", issue_date="2026-02-01", due_date="2026-02-28"
    )
    assert invoice["imported"] is True
    assert invoice["status"] == "to_collect"
    assert (await api.post(f"/v1/invoices/{invoice['id']}/send")).status_code == 409


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {
            "sent_at": "2026-02-01T10:00:00.123456+01:00",
            "issue_date": "2026-02-01",
            "due_date": "2026-03-02",
            "total": "99.9",
            "invoice_text": "Pâtisseries « fines », février",
            "payment_reference": "RF18539007547034",
            "external_id": "erp-42",
        },
        {"currency": "TND", "total": "12.345", "due_date": "2026-03-02"},
    ],
)
async def test_a_new_invoice_answers_what_reading_it_back_gives(api, fields):
    await api.as_new_organization()
    created = await api.post_invoice(**fields)
    assert created.status_code == 201, created.text
    read = await api.get(f"/v1/invoices/{created.json()['id']}")
    assert created.content == read.content


async def test_an_import_records_its_creation_and_import_in_the_activity(api):
    await api.as_new_organization()
    invoice = await api.invoice(sent_at="2026-02-01T10:00:00+01:00", issue_date="2026-02-01")
    activity = (await api.get(f"/v1/invoices/{invoice['id']}/activity")).json()["items"]
    assert [(a["kind"], a["detail"]) for a in activity] == [
        ("invoice.imported", {"sent_at": "2026-02-01T09:00:00+00:00"}),
        ("invoice.created", {}),
    ]


@pytest.mark.parametrize("field", ["number", "external_id"])
async def test_two_invoices_sent_at_once_with_the_same_number_make_one_and_a_409(api, field):
    await api.as_new_organization()
    customer = await api.customer()
    same = {"number": "FA-7"} if field == "number" else {"external_id": "erp-7"}
    answers = await asyncio.gather(
        *(api.post_invoice(customer_id=customer["id"], **same) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    conflict = next(a for a in answers if a.status_code == 409)
    assert "FA-7" in conflict.text if field == "number" else "erp-7" in conflict.text
    listed = (await api.get("/v1/invoices")).json()["items"]
    assert len(listed) == 1


@pytest.mark.parametrize("field", ["number", "external_id"])
async def test_a_number_taken_while_the_invoice_is_written_is_a_409_and_writes_nothing(api, field):
    org = await api.as_new_organization()
    customer = await api.customer()
    dsn = asyncpg_dsn(api.app.state.runtime.database.url)
    other = await asyncpg.connect(dsn)
    try:
        writing = other.transaction()
        await writing.start()
        await other.execute(
            "INSERT INTO invoices (id, organization_id, customer_id, number, external_id,"
            " issue_date, due_date, currency, total, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, '2026-03-02', '2026-03-31', 'EUR', 10, now(), now())",
            uuid.uuid4(),
            uuid.UUID(org["id"]),
            uuid.UUID(customer["id"]),
            "FA-7" if field == "number" else "FA-8",
            "erp-7" if field == "external_id" else None,
        )
        same = {"number": "FA-7"} if field == "number" else {"external_id": "erp-7"}
        posted = asyncio.create_task(
            api.post_invoice(customer_id=customer["id"], sent_at="2026-03-01T10:00:00Z", **same)
        )
        await asyncio.sleep(0.5)
        assert not posted.done(), "the insert waits for the other transaction"
        await writing.commit()
        answer = await posted
        assert answer.status_code == 409, answer.text
        assert ("FA-7" if field == "number" else "erp-7") in answer.json()["detail"]
        counts = await other.fetchrow(
            "SELECT (SELECT count(*) FROM invoices) AS invoices,"
            " (SELECT count(*) FROM activity) AS activity,"
            " (SELECT count(*) FROM outbox WHERE event_type = 'invoice.sent') AS events"
        )
        assert dict(counts) == {"invoices": 1, "activity": 0, "events": 0}
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"total": 1200.5}, "total"),  # a JSON float: amounts travel as strings
        ({"total": "-5.00"}, "total"),
        ({"total": "0"}, "total"),
        ({"total": "12.345"}, "total"),  # EUR has 2 decimals
        ({"total": "1e3"}, "total"),
        ({"total": "10000000000000"}, "total"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "JPY", "total": "100.5"}, "total"),
        ({"issue_date": "2026-02-30"}, "issue_date"),
        ({"due_date": "2026-03-01"}, "due_date"),  # before the issue date
        ({"number": ""}, "number"),
        ({"number": "x" * 51}, "number"),
        ({"number": "FA\n12"}, "number"),
        ({"invoice_text": "x" * 2001}, "invoice_text"),
        ({"sent_at": "2026-02-01T10:00:00"}, "sent_at"),  # no offset
        ({"customer_id": "not-a-uuid"}, "customer_id"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_invoice_fields_are_validated(api, changes, where):
    await api.as_new_organization()
    customer = await api.customer()
    body = {
        "customer_id": customer["id"],
        "number": "FA-1",
        "issue_date": "2026-03-02",
        "due_date": "2026-03-31",
        "currency": "EUR",
        "total": "100.00",
        **changes,
    }
    answer = await api.post("/v1/invoices", body)
    assert answer.status_code == 422, answer.text
    assert where in str(answer.json()["detail"]) or where == "total"


async def test_yen_amounts_have_no_decimals_and_dinar_three(api):
    await api.as_new_organization()
    yen = await api.invoice(currency="JPY", total="150000")
    dinar = await api.invoice(currency="TND", total="12.345")
    assert yen["total"] == "150000"
    assert dinar["total"] == "12.345"


async def test_an_invoice_number_is_used_once_per_organization_only(api):
    await api.as_new_organization()
    await api.invoice(number="FA-2026-0001")
    customer = await api.customer()
    twice = await api.post(
        "/v1/invoices",
        {
            "customer_id": customer["id"],
            "number": "FA-2026-0001",
            "issue_date": "2026-03-02",
            "due_date": "2026-03-31",
            "total": "10.00",
        },
    )
    assert twice.status_code == 409
    await api.as_new_organization(name="Other business")
    assert (await api.invoice(number="FA-2026-0001"))["number"] == "FA-2026-0001"


async def test_an_import_dated_in_the_future_is_refused(api):
    await api.as_new_organization()
    customer = await api.customer()
    answer = await api.post(
        "/v1/invoices",
        {
            "customer_id": customer["id"],
            "number": "FA-9",
            "issue_date": "2026-03-02",
            "due_date": "2026-03-31",
            "total": "10.00",
            "sent_at": "2026-03-10T10:00:00+00:00",
        },
    )
    assert answer.status_code == 422
    assert "future" in answer.text


async def test_to_collect_starts_the_day_after_due_in_the_organization_time_zone(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice(due_date="2026-03-31")
    path = f"/v1/invoices/{invoice['id']}"

    api.clock.set(datetime(2026, 3, 31, 21, 59, tzinfo=UTC))  # 23:59 in Paris, on D
    assert (await api.get(path)).json()["status"] == "not_due"
    assert (await api.get("/v1/invoices", status="to_collect")).json()["items"] == []

    api.clock.set(datetime(2026, 3, 31, 22, 0, tzinfo=UTC))  # midnight in Paris, D + 1
    assert (await api.get(path)).json()["status"] == "to_collect"
    listed = (await api.get("/v1/invoices", status="to_collect")).json()["items"]
    assert [i["id"] for i in listed] == [invoice["id"]]
    assert (await api.get("/v1/invoices", status="not_due")).json()["items"] == []


async def test_a_new_york_organization_turns_to_collect_on_its_own_midnight(api):
    await api.as_new_organization(timezone="America/New_York", country="US")
    invoice = await api.sent_invoice(due_date="2026-03-31")
    path = f"/v1/invoices/{invoice['id']}"
    api.clock.set(datetime(2026, 4, 1, 3, 59, tzinfo=UTC))  # 23:59 on 31 March in New York
    assert (await api.get(path)).json()["status"] == "not_due"
    api.clock.set(datetime(2026, 4, 1, 4, 0, tzinfo=UTC))
    assert (await api.get(path)).json()["status"] == "to_collect"


async def test_payments_make_it_partially_paid_then_paid(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice(total="1200.00")
    payments = f"/v1/invoices/{invoice['id']}/payments"

    first = await api.post(payments, {"amount": "200.00", "paid_on": "2026-03-05"})
    assert first.status_code == 201
    assert first.json()["invoice"]["status"] == "partially_paid"
    assert first.json()["invoice"]["balance"] == "1000.00"

    rest = await api.post(payments, {"amount": "1000", "paid_on": "2026-03-06", "reference": "VIR"})
    assert rest.json()["invoice"]["status"] == "paid"
    assert rest.json()["invoice"]["balance"] == "0.00"

    after = await api.post(payments, {"amount": "1.00", "paid_on": "2026-03-07"})
    assert after.status_code == 409


async def test_an_overpayment_is_refused_and_nothing_is_recorded(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice(total="100.00")
    answer = await api.post(
        f"/v1/invoices/{invoice['id']}/payments", {"amount": "100.01", "paid_on": "2026-03-05"}
    )
    assert answer.status_code == 422
    assert "exceeds the balance 100.00 EUR" in answer.text
    assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["paid"] == "0.00"


async def test_a_draft_cannot_be_paid(api):
    await api.as_new_organization()
    draft = await api.invoice()
    answer = await api.post(
        f"/v1/invoices/{draft['id']}/payments", {"amount": "1.00", "paid_on": "2026-03-05"}
    )
    assert answer.status_code == 409


async def test_a_scheduled_payment_holds_the_status_until_two_business_days_after(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice(due_date="2026-03-10")
    path = f"/v1/invoices/{invoice['id']}"
    answer = await api.post(f"{path}/payment-schedule", {"planned_on": "2026-04-03"})
    assert answer.status_code == 201
    # Friday 3 April 2026 + 2 business days: Monday 6 is Easter Monday, so Wednesday 8
    assert answer.json()["scheduled_payment"] == {
        "planned_on": "2026-04-03",
        "amount": None,
        "until": "2026-04-08",
    }
    api.clock.set(datetime(2026, 4, 8, 20, 0, tzinfo=UTC))
    assert (await api.get(path)).json()["status"] == "scheduled"
    api.clock.set(datetime(2026, 4, 8, 22, 0, tzinfo=UTC))  # 9 April in Paris
    now = (await api.get(path)).json()
    assert now["status"] == "to_collect"
    assert now["scheduled_payment"] is None


async def test_a_schedule_in_the_past_is_refused(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    answer = await api.post(
        f"/v1/invoices/{invoice['id']}/payment-schedule", {"planned_on": "2026-03-01"}
    )
    assert answer.status_code == 422


async def test_suspending_reminders_is_definitive_and_idempotent(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    path = f"/v1/invoices/{invoice['id']}/reminders/suspend"
    first = await api.post(path, {"reason": "litige"})
    second = await api.post(path)
    assert first.status_code == second.status_code == 200
    assert second.json()["reminders_suspended"] is True
    activity = (await api.get(f"/v1/invoices/{invoice['id']}/activity")).json()["items"]
    assert [a["kind"] for a in activity].count("reminders.suspended") == 1


async def test_handing_to_collection_shows_in_the_status(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    answer = await api.post(f"/v1/invoices/{invoice['id']}/collection")
    assert answer.json()["status"] == "in_collection"


async def test_changing_the_due_date_is_kept_and_refused_before_the_issue_date(api):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    path = f"/v1/invoices/{invoice['id']}"
    assert (await api.patch(path, {"due_date": "2026-04-30"})).json()["due_date"] == "2026-04-30"
    assert (await api.patch(path, {"due_date": "2026-01-01"})).status_code == 422


async def test_lists_filter_by_status_customer_text_and_detected_payment(api):
    await api.as_new_organization()
    martin = await api.customer(name="Martin")
    durand = await api.customer(name="Durand")
    a = await api.sent_invoice(customer_id=martin["id"], number="FA-100", invoice_text="Croissants")
    b = await api.invoice(customer_id=durand["id"], number="FA-101")
    c = await api.sent_invoice(customer_id=durand["id"], number="AV-7", total="50.00")
    await api.post(f"/v1/invoices/{c['id']}/payments", {"amount": "50.00", "paid_on": "2026-03-02"})

    async def ids(**params) -> set[str]:
        answer = await api.get("/v1/invoices", **params)
        assert answer.status_code == 200, answer.text
        return {i["id"] for i in answer.json()["items"]}

    assert await ids() == {a["id"], b["id"], c["id"]}
    assert await ids(status="draft") == {b["id"]}
    assert await ids(status="paid") == {c["id"]}
    assert await ids(status="not_due") == {a["id"]}
    assert await ids(customer_id=durand["id"]) == {b["id"], c["id"]}
    assert await ids(q="fa-1") == {a["id"], b["id"]}
    assert await ids(q="croissant") == {a["id"]}
    assert await ids(q="100%") == set()
    assert await ids(payment_detected="true") == set()
    assert await ids(payment_detected="false") == {a["id"], b["id"], c["id"]}
    assert (await api.get("/v1/invoices", status="late")).status_code == 422


async def test_pages_follow_each_other_in_a_stable_order_and_a_bad_cursor_is_a_422(api):
    await api.as_new_organization()
    customer = await api.customer()
    made = []
    for n in range(7):
        api.clock.advance(timedelta(seconds=1 if n != 3 else 0))  # two share a timestamp
        made.append((await api.invoice(customer_id=customer["id"], number=f"P-{n}"))["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/invoices", **params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert len(seen) == 7
    assert (await api.get("/v1/invoices", cursor="garbage")).status_code == 422


async def test_the_aging_report_groups_open_invoices_by_lateness(api):
    await api.as_new_organization()
    martin = await api.customer(name="Martin")
    durand = await api.customer(name="Durand")
    api.clock.set(datetime(2026, 6, 30, 10, 0, tzinfo=UTC))
    for number, customer, due, total in [
        ("A1", martin, "2026-07-15", "100.00"),  # not due
        ("A2", martin, "2026-06-20", "200.00"),  # 10 days late
        ("A3", durand, "2026-06-01", "300.00"),  # 29 days
        ("A4", durand, "2026-04-15", "400.00"),  # 76 days
        ("A5", martin, "2026-01-05", "500.00"),  # 176 days
    ]:
        await api.sent_invoice(
            customer_id=customer["id"], number=number, issue_date="2026-01-01", due_date=due,
            total=total,
        )  # fmt: skip
    paid = await api.sent_invoice(
        customer_id=durand["id"], issue_date="2026-01-01", due_date="2026-06-01"
    )
    await api.post(
        f"/v1/invoices/{paid['id']}/payments", {"amount": "1200.00", "paid_on": "2026-06-02"}
    )

    report = (await api.get("/v1/reports/aging")).json()
    assert report["as_of"] == "2026-06-30"
    buckets = report["buckets"]
    assert buckets["not_due"] == {"invoice_count": 1, "customer_count": 1, "amount": "100.00"}
    assert buckets["1_30"] == {"invoice_count": 2, "customer_count": 2, "amount": "500.00"}
    assert buckets["31_60"] == {"invoice_count": 0, "customer_count": 0, "amount": "0.00"}
    assert buckets["61_90"] == {"invoice_count": 1, "customer_count": 1, "amount": "400.00"}
    assert buckets["over_90"] == {"invoice_count": 1, "customer_count": 1, "amount": "500.00"}
    assert (await api.get("/v1/reports/aging", currency="ABC")).status_code == 422
