"""Partner webhook rules: which messages an event causes, retries for a day, safe URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from relance.common.events import Event
from relance.common.events.invoice_events import (
    InvoiceStatusChanged,
    PaymentReported,
    RemindersSuspended,
)
from relance.common.events.notification_events import EmailFailed
from relance.common.events.types import StepKind
from relance.notifier.webhooks.partners import (
    RETRY_DELAYS,
    partner_messages,
    retry_delay,
    url_problem,
    with_invoice_names,
)

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def event(data):
    return Event.new(data, source="test", organization_id=uuid.uuid4(), time=AT)


def payment(balance: str) -> PaymentReported:
    return PaymentReported(
        invoice_id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        amount=Decimal("100.00"),
        currency="EUR",
        paid_on=date(2026, 4, 1),
        total=Decimal("1000.00"),
        paid=Decimal("1000.00") - Decimal(balance),
        balance=Decimal(balance),
    )


def test_a_full_payment_tells_partners_the_invoice_is_paid():
    messages = partner_messages(event(payment("0.00")))
    assert [t for t, _ in messages] == ["invoice.status_changed", "invoice.paid"]
    assert messages[0][1]["status"] == "paid"
    assert messages[1][1]["balance"] == "0.00"


def test_a_part_payment_is_a_status_change_only():
    [(kind, data)] = partner_messages(event(payment("400.00")))
    assert (kind, data["status"]) == ("invoice.status_changed", "partially_paid")


def test_a_payment_tells_the_status_the_invoice_api_says_it_leaves():
    part = payment("400.00").model_copy(update={"status": "scheduled"})
    [(kind, data)] = partner_messages(event(part))
    assert (kind, data["status"]) == ("invoice.status_changed", "scheduled")


def test_a_failed_email_is_a_failed_reminder_with_its_reason():
    failed = EmailFailed(
        invoice_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        kind=StepKind.DUE,
        reason="550 no",
        failed_at=AT,
    )
    [(kind, data)] = partner_messages(event(failed))
    assert kind == "reminder.failed"
    assert data["reason"] == "550 no"


def test_a_suspension_is_told_as_such():
    [(kind, _)] = partner_messages(
        event(RemindersSuspended(invoice_id=uuid.uuid4(), suspended_at=AT))
    )
    assert kind == "reminders.suspended"


def test_a_calendar_change_is_a_status_change_with_the_status_before_it():
    changed = InvoiceStatusChanged(
        invoice_id=uuid.uuid4(), status="to_collect", previous_status="not_due", changed_at=AT
    )
    [(kind, data)] = partner_messages(event(changed))
    assert kind == "invoice.status_changed"
    assert (data["previous_status"], data["status"]) == ("not_due", "to_collect")
    assert datetime.fromisoformat(data["changed_at"]) == AT


def test_the_copy_of_the_invoice_names_it_else_the_message_itself_else_null():
    messages = [("invoice.sent", {"invoice_id": "i", "number": "FA-1", "external_id": "old"})]
    copy = SimpleNamespace(number="FA-1", external_id="erp-9")
    [(_, named)] = with_invoice_names(messages, copy)
    assert (named["number"], named["external_id"]) == ("FA-1", "erp-9")
    [(_, as_sent)] = with_invoice_names(messages, None)
    assert (as_sent["number"], as_sent["external_id"]) == ("FA-1", "old")
    [(_, unknown)] = with_invoice_names([("payment.matched", {"invoice_id": "i"})], None)
    assert (unknown["number"], unknown["external_id"]) == (None, None)


def test_retries_span_more_than_a_day_then_stop():
    assert sum(RETRY_DELAYS) > 24 * 3600
    assert [retry_delay(n) for n in range(1, len(RETRY_DELAYS) + 1)] == list(RETRY_DELAYS)
    assert retry_delay(len(RETRY_DELAYS) + 1) is None
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)


@pytest.mark.parametrize(
    "url",
    ["https://partner.example/hooks", "http://127.0.0.1:9000/x?y=1", "https://a.b.example:8443/"],
)
def test_http_and_https_urls_are_accepted(url: str):
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://partner.example/x", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pw@partner.example/x", "credentials"),
        ("https://user@partner.example/x", "credentials"),
        ("https:///nohost", "no host"),
        ("https://partner.example:99999/x", "not a valid URL"),
        ("https://partner.example/" + "x" * 2000, "longer than"),
    ],
)
def test_unsafe_or_broken_urls_are_refused(url: str, problem: str):
    assert problem in (url_problem(url) or "")


def test_an_operator_can_restrict_the_hosts():
    allowed = ("partner.example",)
    assert url_problem("https://hooks.partner.example/x", allowed) is None
    assert url_problem("https://partner.example/x", allowed) is None
    assert "not among the hosts" in (url_problem("https://evilpartner.example/x", allowed) or "")
    assert "not among the hosts" in (url_problem("http://169.254.169.254/", allowed) or "")
