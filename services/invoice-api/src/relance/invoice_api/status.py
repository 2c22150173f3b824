"""The status of an invoice, derived from facts and today's date: never stored.

First matching rule wins: ``draft`` (not sent), ``paid`` (balance zero), ``in_collection``
(handed to a collection agency), ``scheduled`` (a payment is announced and its date plus
2 business days has not passed), ``partially_paid`` (something paid, balance left),
``to_collect`` (today, in the organization's time zone, is after the due date), else
``not_due``. ``repository.status_expression`` says the same in SQL for list filters; a
test keeps the two in agreement.

Only the calendar changes a status without a fact changing: ``next_calendar_change`` says
on which day it will (the invoice-api's calendar loop announces it then, see
``workers``), and ``tracking`` what an invoice stores for that loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from relance.common.clock import start_of_local_day


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    PAID = "paid"
    IN_COLLECTION = "in_collection"
    SCHEDULED = "scheduled"
    PARTIALLY_PAID = "partially_paid"
    TO_COLLECT = "to_collect"
    NOT_DUE = "not_due"


SCHEDULE_GRACE_BUSINESS_DAYS = 2  # a scheduled payment may take this long to arrive


@dataclass(frozen=True, slots=True)
class StatusFacts:
    sent_at: datetime | None
    total: Decimal
    paid: Decimal
    due_date: date
    in_collection: bool = False
    scheduled_until: date | None = None  # P + 2 business days of the latest schedule


def invoice_status(facts: StatusFacts, today: date) -> InvoiceStatus:
    """``today`` is the organization's local date."""
    if facts.sent_at is None:
        return InvoiceStatus.DRAFT
    if facts.paid >= facts.total:
        return InvoiceStatus.PAID
    if facts.in_collection:
        return InvoiceStatus.IN_COLLECTION
    if facts.scheduled_until is not None and today <= facts.scheduled_until:
        return InvoiceStatus.SCHEDULED
    if facts.paid > 0:
        return InvoiceStatus.PARTIALLY_PAID
    if today > facts.due_date:
        return InvoiceStatus.TO_COLLECT
    return InvoiceStatus.NOT_DUE


def next_calendar_change(facts: StatusFacts, today: date) -> date | None:
    """The first day after ``today`` on which the status differs from today's with the same
    facts (the due date passes, or a scheduled payment's grace ends), or None if no date
    will ever change it. The status can only change the day after the due date or the day
    after ``scheduled_until``, so only those two days are looked at."""
    now = invoice_status(facts, today)
    candidates = sorted(
        day + timedelta(days=1)
        for day in (facts.due_date, facts.scheduled_until)
        if day is not None and day >= today
    )
    for day in candidates:
        if invoice_status(facts, day) != now:
            return day
    return None


def status_facts(row: Any) -> StatusFacts:
    """The facts the rules above read, from an invoice row."""
    return StatusFacts(
        sent_at=row.sent_at,
        total=row.total,
        paid=row.paid,
        due_date=row.due_date,
        in_collection=row.in_collection_at is not None,
        scheduled_until=row.scheduled_until,
    )


@dataclass(frozen=True, slots=True)
class Tracking:
    """What an invoice stores for the calendar loop, given its facts and today."""

    status_announced: str
    next_status_change_at: datetime | None

    def values(self) -> dict[str, Any]:
        return {
            "status_announced": self.status_announced,
            "next_status_change_at": self.next_status_change_at,
        }


def tracking(facts: StatusFacts, today: date, timezone: str) -> Tracking:
    """The status as of ``today`` (the organization's date) and the instant the calendar
    next changes it (midnight in ``timezone``), or None if it never will."""
    change = next_calendar_change(facts, today)
    return Tracking(
        status_announced=invoice_status(facts, today).value,
        next_status_change_at=None if change is None else start_of_local_day(change, timezone),
    )
