"""The loop that sends due emails, each at most once.

A claim marks due deliveries ``sending`` and commits before any SMTP transaction begins;
the outcome is written afterwards with its ``email.sent`` or ``email.failed`` in the same
transaction. A notifier killed mid-send leaves deliveries ``sending``: when their lease
ends they are not sent again but failed as "in doubt", which a person can check. Each
email is rendered when it is sent, from the notifier's copy of the invoice, so it quotes
the balance of that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from relance.common.clock import Clock, local_today
from relance.common.db import Database
from relance.common.events import Event
from relance.common.events.notification_events import EmailFailed, EmailSent
from relance.common.events.types import StepKind
from relance.common.logging import get_logger
from relance.common.notify import keep_listening, wait_until_woken
from relance.common.outbox import add_event
from relance.notifier import repository as repo
from relance.notifier.mail import Envelope, SendFailed, SmtpConnection, build_message
from relance.notifier.rendering import (
    BadTemplate,
    MailFacts,
    Override,
    language_for,
    render_mail,
)
from relance.notifier.webhooks import fan_out

log = get_logger(__name__)
SOURCE = "notifier"
EMAILS = Counter("relance_emails_total", "Emails by outcome", ["outcome"])
NO_EMAIL = "the customer has no email address"
UNKNOWN_INVOICE = "the invoice is not known to the notifier yet"
FIRST_INVOICE_WAIT_SECONDS = 1.0


class EmailSending:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        smtp: SmtpConnection,
        *,
        mail_from: str,
        batch_size: int = 50,
        poll_seconds: float = 1.0,
        retry_seconds: float = 30.0,
        max_attempts: int = 8,
        lease_seconds: float = 600.0,
        invoice_wait_seconds: float = 86400.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._smtp = smtp
        self._mail_from = mail_from
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._max_attempts = max_attempts
        self._lease = timedelta(seconds=lease_seconds)
        self._invoice_wait = timedelta(seconds=invoice_wait_seconds)
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listener = asyncio.create_task(
            keep_listening(self._database.url, repo.DELIVERIES_CHANNEL, self._wake)
        )
        try:
            while True:
                self._wake.clear()
                try:
                    while await self.send_due() == self._batch_size:
                        pass
                    sleep = await self._seconds_to_next()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not send due emails, will retry", error=repr(exc))
                    sleep = self._poll_seconds
                await wait_until_woken(self._wake, sleep)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._smtp.close()

    async def send_due(self) -> int:
        """Claim one batch of due deliveries and send them; return how many were claimed."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            claimed = await repo.claim_deliveries(session, now, now + self._lease, self._batch_size)
            for row in claimed:
                if row.state == "failed":  # in doubt: interrupted mid-send
                    await announce(session, failed_event(row, repo.IN_DOUBT, now))
                    EMAILS.labels("in_doubt").inc()
        for row in claimed:
            if row.state == "sending":
                await self._send(row)
        return len(claimed)

    async def _send(self, delivery: Any) -> None:
        async with self._database.transaction() as session:
            invoice = await repo.invoice_of(session, delivery.organization_id, delivery.invoice_id)
            language = language_for(
                invoice.customer_locale if invoice else None,
                invoice.organization_locale if invoice else None,
            )
            override = await repo.override_of(
                session, delivery.organization_id, delivery.kind, language
            )
        if invoice is None:
            await self._await_invoice(delivery)
            return
        try:
            if not invoice.customer_email:
                raise SendFailed(NO_EMAIL, permanent=True)
            await self._smtp.send(self._message(delivery, invoice, language, override))
        except SendFailed as failure:
            await self._failed(delivery, failure)
            return
        now = self._clock.now()
        async with self._database.transaction() as session:
            await repo.finish_delivery(
                session, delivery.step_id, "sent", now, recipient=invoice.customer_email
            )
            await announce(session, sent_event(delivery, invoice.customer_email, now))
        EMAILS.labels("sent").inc()

    def _message(self, delivery: Any, invoice: Any, language: str, override: Any) -> Any:
        kind = StepKind(delivery.kind)
        facts = MailFacts(
            organization=invoice.organization_name,
            organization_country=invoice.organization_country,
            customer=invoice.customer_name,
            number=invoice.number,
            currency=invoice.currency,
            total=invoice.total,
            balance=invoice.balance,
            due_date=invoice.due_date,
            payment_reference=invoice.payment_reference,
        )
        today = local_today(self._clock, invoice.timezone)
        mail = None
        if override is not None:
            try:
                mail = render_mail(
                    kind, language, facts, today, Override(override.subject, override.body)
                )
            except BadTemplate as exc:
                # checked when saved, so only facts no sample had can get here
                log.error("organization template failed, built-in used", error=str(exc))
        if mail is None:
            mail = render_mail(kind, language, facts, today)
        envelope = Envelope(
            sender=invoice.sender_email or self._mail_from,
            recipient=invoice.customer_email,
            invoice_id=delivery.invoice_id,
            kind=kind.value,
            message_id=delivery.message_id,
            date=self._clock.now(),
        )
        return build_message(envelope, mail)

    async def _await_invoice(self, delivery: Any) -> None:
        """Try again soon: 1 s, then as long as it has waited so far (so the waits double),
        at most SEND_RETRY_SECONDS. The invoice's arrival makes it due at once (handlers.py);
        failed only when the invoice is still unknown after ``invoice_wait_seconds``."""
        now = self._clock.now()
        since = delivery.invoice_awaited_since or now
        waited = now - since
        if waited >= self._invoice_wait:
            hours = self._invoice_wait.total_seconds() / 3600
            reason = (
                f"the invoice is still not known to the notifier after {hours:g} h: its "
                "invoice.sent was never applied (see the notifier's dead letters)"
            )
            await self._failed(delivery, SendFailed(reason, permanent=True))
            return
        delay = min(
            max(waited.total_seconds(), FIRST_INVOICE_WAIT_SECONDS),
            self._retry_seconds,
            (self._invoice_wait - waited).total_seconds(),
        )
        async with self._database.transaction() as session:
            await repo.await_invoice(
                session, delivery.step_id, since, now + timedelta(seconds=delay), UNKNOWN_INVOICE
            )
        EMAILS.labels("invoice_awaited").inc()
        log.info(
            "email waits for its invoice",
            step=str(delivery.step_id),
            invoice=str(delivery.invoice_id),
            retry_in_seconds=delay,
        )

    async def _failed(self, delivery: Any, failure: SendFailed) -> None:
        now = self._clock.now()
        give_up = failure.permanent or delivery.attempts >= self._max_attempts
        async with self._database.transaction() as session:
            if give_up:
                await repo.finish_delivery(
                    session, delivery.step_id, "failed", now, error=failure.reason
                )
                await announce(session, failed_event(delivery, failure.reason, now))
            else:
                delay = self._retry_seconds * 2 ** (delivery.attempts - 1)
                await repo.retry_delivery(
                    session, delivery.step_id, now + timedelta(seconds=delay), failure.reason
                )
        EMAILS.labels("failed" if give_up else "retried").inc()
        log.warning(
            "email not sent",
            step=str(delivery.step_id),
            reason=failure.reason,
            final=give_up,
            attempts=delivery.attempts,
        )

    async def _seconds_to_next(self) -> float:
        async with self._database.transaction() as session:
            next_at = await repo.next_delivery_at(session)
        if next_at is None:
            return self._poll_seconds
        return min(max((next_at - self._clock.now()).total_seconds(), 0.0), self._poll_seconds)


async def announce(session: Any, event: Event[Any]) -> None:
    """Publish the outcome, and tell the partners who want it, in the same transaction."""
    await add_event(session, event)
    await fan_out(session, event)


def sent_event(delivery: Any, recipient: str, at: datetime) -> Event[EmailSent]:
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
    )


def failed_event(delivery: Any, reason: str, at: datetime) -> Event[EmailFailed]:
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
    )
