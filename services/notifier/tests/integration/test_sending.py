"""Each reminder step becomes one email at the SMTP server, or one failure with its reason."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiosmtpd.controller import Controller

from relance.common.events.invoice_events import PaymentReported
from relance.common.events.types import StepKind
from relance.devstack.ports import free_port
from relance.notifier.mail import SmtpConnection
from relance.notifier.repository import claim_deliveries

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


async def test_a_customer_without_email_fails_the_step_once_with_the_reason(notifier, mail_catcher):
    invoice = await notifier.invoice(email=None)
    await notifier.apply(notifier.due(invoice))
    await notifier.send_all()
    notifier.clock.advance(timedelta(days=2))
    await notifier.send_all()
    assert mail_catcher.messages() == []
    [failed] = await notifier.outbox("email.failed")
    assert failed["reason"] == "the customer has no email address"
    assert [d["state"] for d in await notifier.deliveries()] == ["failed"]


class Refuse:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 mailbox unavailable"


async def test_a_permanent_refusal_fails_the_step_with_the_server_reason(notifier):
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
        await claim_deliveries(session, NOW, NOW + timedelta(minutes=10), 10)
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
