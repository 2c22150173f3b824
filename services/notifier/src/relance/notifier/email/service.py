"""The email use cases: a reminder step's delivery, the sending loop's claims and outcomes
(with their ``email.sent`` / ``email.failed``), and an organization's own wording.

The only module of the emails that writes events to the outbox; the loop itself is in
``workers.py``, the SMTP transaction in ``mail.py``, the wording in ``rendering.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Unprocessable
from relance.common.events import Event
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.reminder_events import ReminderDue
from relance.common.events.types import StepKind
from relance.common.logging import get_logger
from relance.common.outbox import add_events
from relance.common.tracing import current_traceparent
from relance.notifier import repository as invoice_repo
from relance.notifier.email import repository as repo
from relance.notifier.email.mail import message_id_for
from relance.notifier.email.rendering import (
    SAMPLE,
    SAMPLE_TODAY,
    BadTemplate,
    Override,
    RenderedMail,
    builtin_source,
    render_mail,
    subject_number_problem,
)
from relance.notifier.webhooks.service import fan_out_all

log = get_logger(__name__)
SOURCE = "notifier"
UNKNOWN_INVOICE = "the invoice is not known to the notifier yet"


async def add_email_delivery(session: AsyncSession, event: Event[ReminderDue]) -> None:
    """The step's email delivery, due now; a repeated ``reminder.due`` changes nothing."""
    data = event.data
    created = await repo.add_email_delivery(
        session,
        {
            "step_id": data.step_id,
            "organization_id": event.organization_id,
            "invoice_id": data.invoice_id,
            "kind": data.kind.value,
            "severity": data.severity,
            "state": "pending",
            "next_attempt_at": event.time,
            "message_id": message_id_for(data.step_id),
            "traceparent": current_traceparent(),
        },
    )
    if not created:
        log.info(
            "step already has a delivery, repeated reminder.due ignored", step=str(data.step_id)
        )


# The sending loop's claims and outcomes


@dataclass(frozen=True, slots=True)
class ClaimedEmails:
    """One claimed batch: what to send, with the invoice copies and the organizations'
    templates to word it from."""

    claimed: int  # deliveries claimed, including those failed as in doubt
    in_doubt: int  # claimed still ``sending`` after their lease: failed, not sent again
    to_send: list[Any]
    invoices: dict[UUID, Any]
    overrides: dict[tuple[UUID, str, str], Any]


async def claim_emails(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> ClaimedEmails:
    """Claim up to ``limit`` due email deliveries, ``sending`` until ``lease_until``; those
    whose lease ran out mid-send are failed as in doubt, with their ``email.failed``."""
    claimed = await repo.claim_email_deliveries(session, now, lease_until, limit)
    in_doubt = [
        failed_event(row, repo.LEASE_ENDED_IN_DOUBT, now, row.traceparent)
        for row in claimed
        if row.state == "failed"
    ]
    await announce(session, in_doubt)
    to_send = [row for row in claimed if row.state == "sending"]
    invoices = await invoice_repo.invoices_of(session, [row.invoice_id for row in to_send])
    overrides = await repo.overrides_of(session, list({row.organization_id for row in to_send}))
    return ClaimedEmails(len(claimed), len(in_doubt), to_send, invoices, overrides)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed delivery, written with the batch's other outcomes."""

    delivery: Any
    state: str  # sent, failed, pending (a retry) or awaiting (its invoice)
    at: datetime
    recipient: str | None = None
    reason: str | None = None
    cause: str | None = None  # of a failure: the label of relance_emails_failed_total
    next_attempt_at: datetime | None = None
    awaited_since: datetime | None = None
    traceparent: str | None = None  # the span that sent it, when tracing is on


async def record_email_outcomes(
    session: AsyncSession, outcomes: list[Outcome], unsent: list[Any], now: datetime
) -> None:
    """Write a batch's outcomes and their events; put back, due at ``now``, the claimed
    deliveries in ``unsent`` (step ids) whose email was never begun."""
    finished = [o for o in outcomes if o.state in ("sent", "failed")]
    await repo.finish_email_deliveries(
        session,
        [
            {
                "step_id": o.delivery.step_id,
                "state": o.state,
                "at": o.at,
                "recipient": o.recipient,
                "error": o.reason if o.state == "failed" else None,
            }
            for o in finished
        ],
    )
    for o in outcomes:
        if o.state == "pending":
            await repo.retry_email_delivery(
                session, o.delivery.step_id, o.next_attempt_at or o.at, o.reason or ""
            )
        elif o.state == "awaiting":
            await repo.email_awaits_invoice(
                session,
                o.delivery.step_id,
                o.awaited_since or o.at,
                o.next_attempt_at or o.at,
                o.reason or UNKNOWN_INVOICE,
            )
    await repo.release_email_deliveries(session, unsent, now)
    await announce(
        session,
        [
            sent_event(o.delivery, o.recipient, o.at, o.traceparent)
            if o.state == "sent" and o.recipient
            else failed_event(o.delivery, o.reason or "", o.at, o.traceparent)
            for o in finished
        ],
    )


async def announce(session: AsyncSession, events: list[Event[Any]]) -> None:
    """Publish the outcomes, and tell the partners who want them, in the same transaction."""
    await add_events(session, events)
    await fan_out_all(session, events)


def sent_event(
    delivery: Any, recipient: str, at: datetime, traceparent: str | None = None
) -> Event[EmailSent]:
    return Event.new(
        EmailSent(
            invoice_id=delivery.invoice_id,
            step_id=delivery.step_id,
            kind=StepKind(delivery.kind),
            message_id=delivery.message_id,
            recipient=recipient,
            sent_at=at,
        ),
        source=SOURCE,
        organization_id=delivery.organization_id,
        time=at,
        traceparent=traceparent,
    )


def failed_event(
    delivery: Any, reason: str, at: datetime, traceparent: str | None = None
) -> Event[EmailFailed]:
    return Event.new(
        EmailFailed(
            invoice_id=delivery.invoice_id,
            step_id=delivery.step_id,
            kind=StepKind(delivery.kind),
            reason=reason,
            failed_at=at,
        ),
        source=SOURCE,
        organization_id=delivery.organization_id,
        time=at,
        traceparent=traceparent,
    )


# An organization's own wording


class DraftDoesNotRender(Unprocessable):
    """A draft that cannot render: the 422 names its part and line."""

    def __init__(self, error: BadTemplate) -> None:
        super().__init__(error.part, str(error))
        self.line = error.line

    def detail(self) -> Any:
        return [{"loc": [self.where, self.field], "line": self.line, "msg": str(self)}]


@dataclass(frozen=True, slots=True)
class Wording:
    """The wording of one step kind in one language, and whether it is the organization's."""

    subject: str
    body: str
    overridden: bool
    updated_at: datetime | None = None


def checked_draft(kind: StepKind, language: str, subject: str, body: str) -> RenderedMail:
    """The draft rendered with sample data; refused if it cannot render, or if its subject
    does not show the invoice number."""
    try:
        mail = render_mail(kind, language, SAMPLE, SAMPLE_TODAY, Override(subject, body))
    except BadTemplate as exc:
        raise DraftDoesNotRender(exc) from exc
    problem = subject_number_problem(subject)
    if problem is not None:
        raise Unprocessable("subject", problem)
    return mail


async def wording_in_use(
    session: AsyncSession, organization_id: UUID, kind: StepKind, language: str
) -> Wording:
    """The organization's own wording, else the built-in one."""
    row = await repo.override_of(session, organization_id, kind.value, language)
    if row is not None:
        return Wording(row.subject, row.body, overridden=True, updated_at=row.updated_at)
    builtin = builtin_source(kind, language)
    return Wording(builtin.subject.strip(), builtin.body.strip(), overridden=False)


async def save_wording(
    session: AsyncSession,
    organization_id: UUID,
    kind: StepKind,
    language: str,
    subject: str,
    body: str,
    now: datetime,
) -> Wording:
    """Use this wording from now on, once checked as :func:`checked_draft` does."""
    checked_draft(kind, language, subject, body)
    await repo.save_override(
        session,
        {
            "organization_id": organization_id,
            "kind": kind.value,
            "language": language,
            "subject": subject,
            "body": body,
            "updated_at": now,
        },
    )
    return Wording(subject, body, overridden=True, updated_at=now)


async def reset_wording(
    session: AsyncSession, organization_id: UUID, kind: StepKind, language: str
) -> None:
    """Back to the built-in wording."""
    await repo.delete_override(session, organization_id, kind.value, language)
