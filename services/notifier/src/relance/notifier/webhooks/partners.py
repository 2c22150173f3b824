"""What partners are told, and the rules of their webhooks (Standard Webhooks 1.0). Pure.

Each Relance event maps to the partner message types below; an endpoint receives the types
it subscribed to. Every message about an invoice names it as the partner knows it: its
``number`` and its ``external_id`` (the partner's own id), from the notifier's copy of the
invoice (``with_invoice_names``). A failed delivery is retried on a schedule that spans more
than a day, then kept for a manual replay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from relance.common.events import Event
from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceSent,
    InvoiceStatusChanged,
    PaymentReported,
    PaymentScheduled,
    RemindersSuspended,
)
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.payment_events import PaymentMatched, PaymentSuggested

WEBHOOK_TYPES = (
    "invoice.sent",
    "invoice.status_changed",
    "invoice.paid",
    "reminder.sent",
    "reminder.failed",
    "reminders.suspended",
    "payment.detected",
    "payment.matched",
)
# seconds before each new attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (27 h in all)
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_URL_LENGTH = 2000


def retry_delay(attempts: int) -> int | None:
    """Seconds until the next attempt after ``attempts`` failed ones; None when done."""
    return RETRY_DELAYS[attempts - 1] if 1 <= attempts <= len(RETRY_DELAYS) else None


def partner_messages(event: Event[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The partner messages an event causes: (type, data)."""
    data = event.data
    fields = data.model_dump(mode="json")
    match data:
        case InvoiceSent():
            invoice = fields["invoice"]
            return [
                (
                    "invoice.sent",
                    {
                        "invoice_id": fields["invoice_id"],
                        "number": invoice["number"],
                        "external_id": invoice["external_id"],
                        "total": invoice["total"],
                        "currency": invoice["currency"],
                        "due_date": invoice["due_date"],
                        "sent_at": invoice["sent_at"],
                        "imported": fields["imported"],
                    },
                )
            ]
        case PaymentReported():
            status = data.status or ("paid" if data.balance <= 0 else "partially_paid")
            messages = [("invoice.status_changed", {**fields, "status": status})]
            if data.balance <= 0:
                messages.append(("invoice.paid", fields))
            return messages
        case PaymentScheduled():
            return [("invoice.status_changed", {**fields, "status": "scheduled"})]
        case InvoiceStatusChanged():  # the calendar's: a due date passed, a grace ended
            return [("invoice.status_changed", fields)]
        case InvoiceHandedToCollection():
            return [("invoice.status_changed", {**fields, "status": "in_collection"})]
        case RemindersSuspended():
            return [("reminders.suspended", fields)]
        case EmailSent():
            return [("reminder.sent", fields)]
        case EmailFailed():
            return [("reminder.failed", fields)]
        case PaymentSuggested():
            return [("payment.detected", fields)]
        case PaymentMatched():
            return [("payment.matched", fields)]
    return []


def with_invoice_names(
    messages: list[tuple[str, dict[str, Any]]], invoice: Any | None
) -> list[tuple[str, dict[str, Any]]]:
    """``messages`` with the invoice's ``number`` and ``external_id``, from ``invoice`` (the
    notifier's copy, current as of its latest event) when there is one, else as the message
    already has them (``invoice.sent``), else null: a bank match read before the invoice's
    ``invoice.sent`` (another topic) may come first."""
    named = []
    for message_type, data in messages:
        if invoice is not None:
            names = {"number": invoice.number, "external_id": invoice.external_id}
        else:
            names = {"number": data.get("number"), "external_id": data.get("external_id")}
        named.append((message_type, {**data, **names}))
    return named


def webhook_body(message_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"type": message_type, "timestamp": at.isoformat(), "data": data}


def url_problem(url: str, allowed_hosts: tuple[str, ...] = ()) -> str | None:
    """Why ``url`` cannot be a partner endpoint, or None if it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"url is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "url must start with http:// or https://"
    if not parts.hostname:
        return "url has no host"
    if parts.username is not None or parts.password is not None:
        return "url must not carry credentials; the signature authenticates deliveries"
    if allowed_hosts and not any(
        parts.hostname == allowed or parts.hostname.endswith("." + allowed)
        for allowed in allowed_hosts
    ):
        return f"url host {parts.hostname} is not among the hosts this deployment allows"
    return None
