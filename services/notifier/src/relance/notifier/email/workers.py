"""The loop that sends due emails, each at most once.

A claim marks a batch of due deliveries ``sending`` and commits before any SMTP
transaction begins; the batch is then sent over a few SMTP connections at once, and the
outcomes are written afterwards in one transaction with their ``email.sent`` or
``email.failed``. A notifier killed mid-send leaves deliveries ``sending``: when their
lease ends they are not sent again but failed as "in doubt", which a person can check
(a notifier that is stopped writes the outcomes it has, and puts back the deliveries it
had not begun). Each email is rendered when it is sent, from the notifier's copy of the
invoice, so it quotes the balance of that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter

from relance.common.clock import Clock, local_today, seconds_until
from relance.common.db import Database
from relance.common.events.types import StepKind
from relance.common.logging import get_logger
from relance.common.notify import keep_listening, wait_until_woken
from relance.common.service import Runtime
from relance.common.tracing import current_traceparent, resumed
from relance.common.tracing import enabled as tracing_enabled
from relance.notifier.email import repository as repo
from relance.notifier.email.mail import Envelope, SendFailed, SmtpConnection, build_message
from relance.notifier.email.rendering import (
    BadTemplate,
    MailFacts,
    Override,
    language_for,
    render_mail,
)
from relance.notifier.email.service import (
    UNKNOWN_INVOICE,
    Outcome,
    claim_emails,
    record_email_outcomes,
)
from relance.notifier.settings import NotifierSettings

log = get_logger(__name__)
EMAILS = Counter("relance_emails_total", "Emails by outcome", ["outcome"])
EMAILS_FAILED = Counter(
    "relance_emails_failed_total",
    "Emails given up on, by cause (refused, unreachable, temporary_error, in_doubt, "
    "no_address, invoice_unknown, not_supported)",
    ["cause"],
)
NO_EMAIL = "the customer has no email address"
FIRST_INVOICE_WAIT_SECONDS = 1.0


class EmailSending:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        smtp: SmtpConnection | Sequence[SmtpConnection],
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
        self._smtp = smtp  # one connection, or several used at once
        self._mail_from = mail_from
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._max_attempts = max_attempts
        self._lease = timedelta(seconds=lease_seconds)
        self._invoice_wait = timedelta(seconds=invoice_wait_seconds)
        self._wake = asyncio.Event()

    @property
    def _connections(self) -> list[SmtpConnection]:
        return [self._smtp] if isinstance(self._smtp, SmtpConnection) else list(self._smtp)

    async def run(self) -> None:
        listener = asyncio.create_task(
            keep_listening(self._database.url, repo.EMAILS_CHANNEL, self._wake)
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
            for connection in self._connections:
                await connection.close()

    async def send_due(self) -> int:
        """Claim one batch of due deliveries and send them; return how many were claimed."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            batch = await claim_emails(session, now, now + self._lease, self._batch_size)
        EMAILS.labels("in_doubt").inc(batch.in_doubt)
        EMAILS_FAILED.labels("in_doubt").inc(batch.in_doubt)
        if not batch.to_send:
            return batch.claimed
        to_send, invoices, overrides = batch.to_send, batch.invoices, batch.overrides
        outcomes: list[Outcome] = []
        handed: set[Any] = set()  # step ids given to an SMTP connection
        free: asyncio.Queue[SmtpConnection] = asyncio.Queue()
        for connection in self._connections:
            free.put_nowait(connection)

        async def attempt(delivery: Any) -> Outcome:
            invoice = invoices.get(delivery.invoice_id)
            if invoice is None or invoice.organization_id != delivery.organization_id:
                return self._await_invoice(delivery)
            if not invoice.customer_email:
                return self._failed(
                    delivery, SendFailed(NO_EMAIL, permanent=True, cause="no_address")
                )
            connection = await free.get()
            handed.add(delivery.step_id)  # from here on, never put back
            try:
                await connection.send(self._message(delivery, invoice, overrides))
            except SendFailed as failure:
                return self._failed(delivery, failure)
            finally:
                free.put_nowait(connection)
            return Outcome(delivery, "sent", self._clock.now(), recipient=invoice.customer_email)

        async def send_one(delivery: Any) -> None:
            if not tracing_enabled():
                outcomes.append(await attempt(delivery))
                return
            with resumed(
                delivery.traceparent,
                "email send",
                kind=SpanKind.CLIENT,
                attributes={
                    "relance.invoice_id": str(delivery.invoice_id),
                    "relance.step_id": str(delivery.step_id),
                    "relance.reminder_kind": delivery.kind,
                    "relance.attempt": delivery.attempts,
                },
            ) as span:
                outcome = await attempt(delivery)
                if span is not None:
                    span.set_attribute("relance.email_outcome", outcome.state)
                    if outcome.state == "failed":
                        span.set_status(Status(StatusCode.ERROR, outcome.reason))
                # the outcome's event continues the trace from this span
                outcomes.append(replace(outcome, traceparent=current_traceparent()))

        try:
            # every one runs to its end, even when another raised
            results = await asyncio.gather(
                *(send_one(row) for row in to_send), return_exceptions=True
            )
        finally:
            # also when stopped: what went out is recorded, what never began is put back,
            # and only the emails cut off mid-send stay ``sending`` (in doubt after the lease)
            done = {o.delivery.step_id for o in outcomes}
            unsent = [r.step_id for r in to_send if r.step_id not in handed | done]
            await self._record(outcomes, unsent)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return batch.claimed

    def _message(self, delivery: Any, invoice: Any, overrides: dict[Any, Any]) -> Any:
        kind = StepKind(delivery.kind)
        language = language_for(invoice.customer_locale, invoice.organization_locale)
        override = overrides.get((delivery.organization_id, delivery.kind, language))
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

    def _await_invoice(self, delivery: Any) -> Outcome:
        """Try again soon: 1 s, then as long as it has waited so far (so the waits double),
        at most SEND_RETRY_SECONDS. The invoice's arrival makes it due at once (``keep_invoice``);
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
            return self._failed(
                delivery, SendFailed(reason, permanent=True, cause="invoice_unknown")
            )
        delay = min(
            max(waited.total_seconds(), FIRST_INVOICE_WAIT_SECONDS),
            self._retry_seconds,
            (self._invoice_wait - waited).total_seconds(),
        )
        log.info(
            "email waits for its invoice",
            step=str(delivery.step_id),
            invoice=str(delivery.invoice_id),
            retry_in_seconds=delay,
        )
        return Outcome(
            delivery,
            "awaiting",
            now,
            reason=UNKNOWN_INVOICE,
            next_attempt_at=now + timedelta(seconds=delay),
            awaited_since=since,
        )

    def _failed(self, delivery: Any, failure: SendFailed) -> Outcome:
        now = self._clock.now()
        give_up = failure.permanent or delivery.attempts >= self._max_attempts
        log.warning(
            "email not sent",
            step=str(delivery.step_id),
            reason=failure.reason,
            final=give_up,
            attempts=delivery.attempts,
        )
        if give_up:
            return Outcome(delivery, "failed", now, reason=failure.reason, cause=failure.cause)
        delay = self._retry_seconds * 2 ** (delivery.attempts - 1)
        return Outcome(
            delivery,
            "pending",
            now,
            reason=failure.reason,
            next_attempt_at=now + timedelta(seconds=delay),
        )

    async def _record(self, outcomes: list[Outcome], unsent: list[Any]) -> None:
        """Write the batch's outcomes and their events in one transaction."""
        if not outcomes and not unsent:
            return
        async with self._database.transaction() as session:
            await record_email_outcomes(session, outcomes, unsent, self._clock.now())
        for o in outcomes:
            EMAILS.labels(
                {"pending": "retried", "awaiting": "invoice_awaited"}.get(o.state, o.state)
            ).inc()
            if o.state == "failed":
                EMAILS_FAILED.labels(o.cause or "unknown").inc()

    async def _seconds_to_next(self) -> float:
        async with self._database.transaction() as session:
            next_at = await repo.next_email_delivery_at(session)
        return seconds_until(next_at, self._clock.now(), at_most=self._poll_seconds)


async def send_emails(runtime: Runtime[NotifierSettings]) -> None:
    """The sending loop with the service's settings (off when ``RUN_SENDING`` is false)."""
    settings = runtime.settings
    if not settings.run_sending:
        return
    smtp = [
        SmtpConnection(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
        for _ in range(settings.smtp_connections)
    ]
    await EmailSending(
        runtime.database,
        runtime.clock,
        smtp,
        mail_from=settings.mail_from,
        batch_size=settings.sending_batch_size,
        poll_seconds=settings.sending_poll_seconds,
        retry_seconds=settings.send_retry_seconds,
        max_attempts=settings.send_max_attempts,
        invoice_wait_seconds=settings.send_invoice_wait_seconds,
        # the lease covers a batch sent one email after the other (a connection that fails
        # leaves the others more to send), as with a single connection
        lease_seconds=settings.smtp_timeout_seconds * (settings.sending_batch_size + 1),
    ).run()
