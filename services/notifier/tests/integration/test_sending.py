"""Each reminder step becomes one email at the SMTP server, or one failure with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY
from sqlalchemy import text

from relance.common.events.invoice_events import PaymentReported
from relance.common.events.types import StepKind
from relance.devstack.ports import free_port
from relance.notifier import repository as repo
from relance.notifier.email.mail import SmtpConnection
from relance.notifier.email.repository import claim_email_deliveries
from relance.notifier.email.workers import EmailSending

from ..conftest import NOW


async def test_a_due_step_arrives_as_an_email_with_the_contract_headers(notifier, mail_catcher):
    invoice = await notifier.invoice()
    due = notifier.due(invoice)
    await notifier.apply(due)
    await notifier.send_all()

    [mail] = mail_catcher.messages()
    assert mail["To"] == "compta@martin.example"
    assert mail["From"] == "factures@dupont.example"
    assert "FA-2026-0042" in mail["Subject"]
    assert mail["X-Invoice-Id"] == str(invoice)
    assert mail["X-Reminder-Kind"] == "escalation_1"
    assert mail["Message-ID"] == f"<{due.step_id}@relance>"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "1 200,00" in text.replace("\u202f", " ").replace("\xa0", " ")
    assert "<p>" in html
    [sent] = await notifier.outbox("email.sent")
    assert sent["step_id"] == str(due.step_id)
    assert sent["recipient"] == "compta@martin.example"
    assert sent["message_id"] == f"<{due.step_id}@relance>"


async def test_the_email_is_in_the_customer_language(notifier, mail_catcher):
    invoice = await notifier.invoice(locale="en")
    await notifier.apply(notifier.due(invoice))
    await notifier.send_all()
    [mail] = mail_catcher.messages()
    assert mail["Subject"].startswith("Payment reminder")


async def test_the_balance_quoted_is_the_one_when_the_email_goes(notifier, mail_catcher):
    invoice = await notifier.invoice()
    await notifier.apply(notifier.due(invoice))
    await notifier.apply(
        PaymentReported(
            invoice_id=invoice,
            payment_id=invoice,
            amount=Decimal("500.00"),
            currency="EUR",
            paid_on=NOW.date(),
            total=Decimal("1200.00"),
            paid=Decimal("500.00"),
            balance=Decimal("700.00"),
        )
    )
    await notifier.send_all()
    [mail] = mail_catcher.messages()
    assert "700,00" in mail.get_body(("plain",)).get_content()


async def test_a_step_delivered_twice_is_emailed_once(notifier, mail_catcher):
    invoice = await notifier.invoice()
    due = notifier.due(invoice)
    await notifier.apply(due)
    await notifier.apply(due)  # the same event again: the inbox drops it
    # another event for the same step (the scheduler republished it): the delivery exists
    await notifier.apply(due.model_copy(update={"scheduled_for": NOW + timedelta(seconds=1)}))
    await notifier.send_all()
    await notifier.send_all()
    assert len(mail_catcher.messages()) == 1
    assert len(await notifier.outbox("email.sent")) == 1


def failures_counted(cause: str) -> float:
    """What an operator's dashboard reads: ``relance_emails_failed_total{cause=...}``."""
    return REGISTRY.get_sample_value("relance_emails_failed_total", {"cause": cause}) or 0.0


async def test_a_customer_without_email_fails_the_step_once_with_the_reason(notifier, mail_catcher):
    counted_before = failures_counted("no_address")
    invoice = await notifier.invoice(email=None)
    await notifier.apply(notifier.due(invoice))
    await notifier.send_all()
    notifier.clock.advance(timedelta(days=2))
    await notifier.send_all()
    assert mail_catcher.messages() == []
    [failed] = await notifier.outbox("email.failed")
    assert failed["reason"] == "the customer has no email address"
    assert [d["state"] for d in await notifier.deliveries()] == ["failed"]
    assert failures_counted("no_address") == counted_before + 1


class Refuse:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 mailbox unavailable"


async def test_a_permanent_refusal_fails_the_step_with_the_server_reason(notifier):
    counted_before = failures_counted("refused")
    port = free_port()
    refusing = Controller(Refuse(), hostname="127.0.0.1", port=port)
    refusing.start()
    try:
        notifier.sending._smtp = SmtpConnection("127.0.0.1", port, timeout=5)
        invoice = await notifier.invoice()
        await notifier.apply(notifier.due(invoice))
        await notifier.send_all()
    finally:
        refusing.stop()
    [failed] = await notifier.outbox("email.failed")
    assert failed["reason"].startswith("550")
    assert "mailbox unavailable" in failed["reason"]
    assert failures_counted("refused") == counted_before + 1


async def test_an_unreachable_server_is_retried_with_backoff_then_the_email_goes(
    notifier, mail_catcher
):
    real_port = mail_catcher.port
    notifier.sending._smtp = SmtpConnection("127.0.0.1", free_port(), timeout=2)
    invoice = await notifier.invoice()
    await notifier.apply(notifier.due(invoice))
    await notifier.send_all()
    [delivery] = await notifier.deliveries()
    assert delivery["state"] == "pending"
    assert delivery["next_attempt_at"] == NOW + timedelta(seconds=30)
    assert "unreachable" in delivery["last_error"]
    assert await notifier.outbox("email.failed") == []

    notifier.sending._smtp = SmtpConnection("127.0.0.1", real_port, timeout=5)
    notifier.clock.advance(timedelta(seconds=29))
    await notifier.send_all()
    assert mail_catcher.messages() == []  # not before its time
    notifier.clock.advance(timedelta(seconds=1))
    await notifier.send_all()
    assert len(mail_catcher.messages()) == 1


async def test_an_email_interrupted_mid_send_is_never_sent_again(notifier, mail_catcher):
    invoice = await notifier.invoice()
    await notifier.apply(notifier.due(invoice))
    # a notifier claims the delivery, then dies before finishing the SMTP transaction
    async with notifier.database.transaction() as session:
        await claim_email_deliveries(session, NOW, NOW + timedelta(minutes=10), 10)
    await notifier.send_all()
    assert mail_catcher.messages() == []  # its lease still runs
    notifier.clock.advance(timedelta(minutes=10))
    await notifier.send_all()
    await asyncio.sleep(0)
    assert mail_catcher.messages() == []
    [failed] = await notifier.outbox("email.failed")
    assert "not sent again" in failed["reason"]
    assert [d["state"] for d in await notifier.deliveries()] == ["failed"]


async def test_the_invoice_copy_arriving_after_the_step_still_gets_the_email_out(
    notifier, mail_catcher
):
    early = notifier.due(uuid.uuid4())
    await notifier.apply(early)
    await notifier.send_all()
    [delivery] = await notifier.deliveries()
    assert delivery["state"] == "pending"
    assert delivery["last_error"] == "the invoice is not known to the notifier yet"
    assert StepKind(delivery["kind"]) is StepKind.ESCALATION_1


async def test_a_step_whose_invoice_is_late_is_retried_within_seconds_without_using_attempts(
    notifier, mail_catcher
):
    invoice = uuid.uuid4()
    await notifier.apply(notifier.due(invoice))  # reminder.due applied before invoice.sent
    waits = []
    for _ in range(8):
        await notifier.send_all()
        [delivery] = await notifier.deliveries()
        waits.append(delivery["next_attempt_at"] - notifier.clock.now())
        notifier.clock.set(delivery["next_attempt_at"])
    # 1 s, then doubling, capped at SEND_RETRY_SECONDS (30 s here)
    assert [w.total_seconds() for w in waits] == [1, 1, 2, 4, 8, 16, 30, 30]
    # eight waits, and max_attempts is 3: the attempts are kept for SMTP failures
    assert (delivery["state"], delivery["attempts"]) == ("pending", 0)
    assert await notifier.outbox("email.failed") == []

    await notifier.invoice(invoice_id=invoice)
    [delivery] = await notifier.deliveries()
    assert delivery["next_attempt_at"] <= notifier.clock.now()  # due again at once
    await notifier.send_all()
    assert len(mail_catcher.messages()) == 1
    [sent] = await notifier.outbox("email.sent")
    assert sent["invoice_id"] == str(invoice)


async def test_a_waiting_step_goes_as_soon_as_its_invoice_arrives(notifier, mail_catcher):
    # no polling to fall back on: only the invoice's NOTIFY can wake the loop
    sending = EmailSending(
        notifier.database,
        notifier.clock,
        notifier.smtp,
        mail_from="Relance <no-reply@relance.test>",
        poll_seconds=60,
    )
    invoice = uuid.uuid4()
    await notifier.apply(notifier.due(invoice))
    loop = asyncio.create_task(sending.run())
    try:
        for _ in range(200):
            [delivery] = await notifier.deliveries()
            if delivery["last_error"] and await listening(notifier):
                break
            await asyncio.sleep(0.05)
        assert delivery["state"] == "pending"
        await notifier.invoice(invoice_id=invoice)  # the clock does not move
        for _ in range(200):
            if mail_catcher.messages():
                break
            await asyncio.sleep(0.05)
        assert len(mail_catcher.messages()) == 1
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def listening(notifier: Any) -> bool:
    async with notifier.database.transaction() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN%relance_deliveries%'"
            )
        )
    return bool(found)


async def test_a_step_whose_invoice_never_arrives_fails_after_the_wait_with_the_reason(
    notifier, mail_catcher
):
    notifier.sending._invoice_wait = timedelta(hours=1)
    await notifier.apply(notifier.due(uuid.uuid4()))
    for _ in range(200):
        await notifier.send_all()
        [delivery] = await notifier.deliveries()
        if delivery["state"] != "pending":
            break
        notifier.clock.set(delivery["next_attempt_at"])
    assert delivery["state"] == "failed"
    assert NOW + timedelta(hours=1) <= notifier.clock.now() < NOW + timedelta(hours=1, minutes=1)
    [failed] = await notifier.outbox("email.failed")
    assert failed["reason"].startswith("the invoice is still not known to the notifier after")
    assert mail_catcher.messages() == []


class Counting:
    """An SMTP server that keeps the mails, counts NOOPs and the sessions in DATA at once;
    with ``drop`` it closes each connection a moment after accepting a mail."""

    def __init__(self, *, drop: bool = False, hold: float = 0.0) -> None:
        self.message_ids: list[str] = []
        self.noops = 0
        self.in_data = 0
        self.most_in_data = 0
        self.drop = drop
        self.hold = hold

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        self.noops += 1
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        await asyncio.sleep(self.hold)  # so that sends running together overlap here
        self.in_data -= 1
        text = envelope.content.decode(errors="replace")
        self.message_ids += [
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.lower().startswith("message-id:")
        ]
        if self.drop:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return "250 OK"


def serve(handler: Counting) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


async def test_a_batch_goes_over_several_connections_at_once_without_noops(notifier):
    handler = Counting(hold=0.2)
    server = serve(handler)
    connections = [SmtpConnection("127.0.0.1", server.port, timeout=5) for _ in range(3)]
    try:
        notifier.sending._smtp = connections
        steps = []
        for _ in range(6):
            due = notifier.due(await notifier.invoice())
            steps.append(due.step_id)
            await notifier.apply(due)
        await notifier.send_all()
        notifier.clock.advance(timedelta(seconds=1))
        await notifier.apply(notifier.due(await notifier.invoice()))
        await notifier.send_all()  # on connections already open: no NOOP before it
    finally:
        for connection in connections:
            await connection.close()
        server.stop()
    assert handler.most_in_data > 1
    assert handler.noops == 0
    assert len(handler.message_ids) == len(set(handler.message_ids)) == 7
    assert {f"<{s}@relance>" for s in steps} <= set(handler.message_ids)
    assert [d["state"] for d in await notifier.deliveries()] == ["sent"] * 7
    assert len(await notifier.outbox("email.sent")) == 7


async def test_a_connection_the_server_dropped_is_reopened_and_no_email_is_lost_or_doubled(
    notifier,
):
    handler = Counting(drop=True)
    server = serve(handler)
    try:
        notifier.sending._smtp = SmtpConnection("127.0.0.1", server.port, timeout=5)
        for _ in range(3):
            await notifier.apply(notifier.due(await notifier.invoice()))
            await notifier.send_all()
            await asyncio.sleep(0.2)  # the server closes the idle connection meanwhile
    finally:
        await notifier.sending._smtp.close()
        server.stop()
    assert len(handler.message_ids) == len(set(handler.message_ids)) == 3
    assert [d["state"] for d in await notifier.deliveries()] == ["sent"] * 3


async def test_a_stopped_sender_records_what_went_and_puts_back_what_never_began(
    notifier, mail_catcher
):
    handler = Counting(hold=30)  # the first email hangs in DATA
    server = serve(handler)
    notifier.sending._smtp = SmtpConnection("127.0.0.1", server.port, timeout=60)
    try:
        for _ in range(3):
            await notifier.apply(notifier.due(await notifier.invoice()))
        task = asyncio.create_task(notifier.sending.send_due())
        for _ in range(200):
            if handler.in_data:
                break
            await asyncio.sleep(0.05)
        task.cancel()  # the service is stopped mid-batch
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await notifier.sending._smtp.close()
        server.stop()
    states = sorted((d["state"], d["attempts"]) for d in await notifier.deliveries())
    # the one cut off mid-send stays ``sending`` (in doubt); the two never begun wait again
    assert states == [("pending", 0), ("pending", 0), ("sending", 1)]


async def test_an_invoice_arriving_while_its_step_is_being_sent_leaves_it_due_at_once(
    notifier, mail_catcher, monkeypatch
):
    invoice = uuid.uuid4()
    await notifier.apply(notifier.due(invoice))
    read = repo.invoices_of

    async def the_invoice_arrives_just_after(session: Any, ids: Any) -> Any:
        found = await read(session, ids)  # not there yet
        await notifier.invoice(invoice_id=invoice)  # applied before the outcome is written
        monkeypatch.setattr(repo, "invoices_of", read)
        return found

    monkeypatch.setattr(repo, "invoices_of", the_invoice_arrives_just_after)
    await notifier.send_all()  # the clock does not move
    assert len(mail_catcher.messages()) == 1


class HangUpAfterData(Counting):
    """Takes the whole email, then closes the connection instead of answering."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 OK"


async def test_an_email_whose_acceptance_is_unknown_is_failed_not_sent_twice(notifier):
    counted_before = failures_counted("in_doubt")
    handler = HangUpAfterData()
    server = serve(handler)
    try:
        notifier.sending._smtp = SmtpConnection("127.0.0.1", server.port, timeout=5)
        await notifier.apply(notifier.due(await notifier.invoice()))
        await notifier.send_all()
        notifier.clock.advance(timedelta(hours=2))  # past any retry
        await notifier.send_all()
    finally:
        await notifier.sending._smtp.close()
        server.stop()
    assert len(handler.message_ids) == 1
    [delivery] = await notifier.deliveries()
    assert delivery["state"] == "failed"
    [failed] = await notifier.outbox("email.failed")
    assert "may have been delivered" in failed["reason"]
    assert failures_counted("in_doubt") == counted_before + 1
