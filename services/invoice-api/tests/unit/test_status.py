"""The five statuses of an invoice and its life-cycle ends, derived from facts and today."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from relance.invoice_api.status import InvoiceStatus, StatusFacts, invoice_status

S = InvoiceStatus
SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DUE = date(2026, 3, 31)


def facts(**changes: object) -> StatusFacts:
    base: dict[str, object] = {
        "sent_at": SENT,
        "total": Decimal("1200.00"),
        "paid": Decimal("0"),
        "due_date": DUE,
    }
    base.update(changes)
    return StatusFacts(**base)  # type: ignore[arg-type]


def test_an_invoice_not_sent_is_a_draft_even_when_overdue():
    assert invoice_status(facts(sent_at=None), date(2026, 6, 1)) is S.DRAFT


def test_sent_and_not_yet_due_is_not_due_up_to_and_including_the_due_date():
    assert invoice_status(facts(), date(2026, 3, 2)) is S.NOT_DUE
    assert invoice_status(facts(), DUE) is S.NOT_DUE


def test_the_day_after_the_due_date_it_is_to_collect():
    assert invoice_status(facts(), date(2026, 4, 1)) is S.TO_COLLECT


def test_some_payment_with_a_balance_left_is_partially_paid_before_and_after_due():
    partly = facts(paid=Decimal("200.00"))
    assert invoice_status(partly, date(2026, 3, 10)) is S.PARTIALLY_PAID
    assert invoice_status(partly, date(2026, 5, 10)) is S.PARTIALLY_PAID


def test_balance_zero_is_paid_whatever_else_is_true():
    paid = facts(paid=Decimal("1200.00"), in_collection=True, scheduled_until=date(2026, 4, 3))
    assert invoice_status(paid, date(2026, 4, 1)) is S.PAID


def test_handed_to_collection_wins_over_schedule_partial_payment_and_lateness():
    collected = facts(paid=Decimal("100"), in_collection=True, scheduled_until=date(2026, 4, 30))
    assert invoice_status(collected, date(2026, 4, 10)) is S.IN_COLLECTION


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 4, 1), S.SCHEDULED),
        (date(2026, 4, 6), S.SCHEDULED),  # the last day of P + 2 business days
        (date(2026, 4, 7), S.TO_COLLECT),  # the day after: reminders resume
    ],
)
def test_scheduled_lasts_until_the_planned_date_plus_two_business_days(today, expected):
    scheduled = facts(scheduled_until=date(2026, 4, 6))
    assert invoice_status(scheduled, today) is expected


def test_scheduled_wins_over_partially_paid_and_then_gives_way_to_it():
    partly_scheduled = facts(paid=Decimal("1"), scheduled_until=date(2026, 4, 6))
    assert invoice_status(partly_scheduled, date(2026, 4, 2)) is S.SCHEDULED
    assert invoice_status(partly_scheduled, date(2026, 4, 8)) is S.PARTIALLY_PAID


def test_an_overpaid_invoice_counts_as_paid():
    assert invoice_status(facts(paid=Decimal("1300")), DUE) is S.PAID


@pytest.mark.parametrize("offset", range(-40, 41))
def test_only_the_day_decides_between_not_due_and_to_collect(offset: int):
    today = date.fromordinal(DUE.toordinal() + offset)
    expected = S.TO_COLLECT if offset > 0 else S.NOT_DUE
    assert invoice_status(facts(), today) is expected
