"""The email of one step, and the SMTP connection that sends it.

The ``Message-ID`` is derived from the step id, so a step's email can be recognised
wherever it lands. The connection is long-lived. It is not checked before each email: a
connection the server dropped while idle fails at the first command (``MAIL FROM``),
before any of the message was sent, and only then is it reopened and the email sent on
the new one. An answer code of 500 or more is a permanent refusal, anything else a
temporary failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from uuid import UUID

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

from relance.common.logging import get_logger
from relance.notifier.email.rendering import RenderedMail

log = get_logger(__name__)


def message_id_for(step_id: UUID) -> str:
    return f"<{step_id}@relance>"


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipient: str
    invoice_id: UUID
    kind: str
    message_id: str
    date: datetime


def build_message(envelope: Envelope, mail: RenderedMail) -> Message:
    """The email, text and HTML alternatives in UTF-8 (base64), headers encoded as RFC 2047
    asks when they are not ASCII. Built with the standard library's compat32 classes: the
    default policy's ``EmailMessage`` parses and refolds every header, which cost about
    three times as much CPU as the whole SMTP transaction."""
    message = MIMEMultipart("alternative")
    message["From"] = _address(envelope.sender)
    message["To"] = _address(envelope.recipient)
    message["Subject"] = _text(mail.subject, "Subject")
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    message["X-Invoice-Id"] = str(envelope.invoice_id)
    message["X-Reminder-Kind"] = envelope.kind
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(mail.text, "plain", "utf-8"))
    message.attach(MIMEText(mail.html, "html", "utf-8"))
    return message


def _text(value: str, name: str) -> str:
    value = " ".join(value.splitlines())  # a line break would end the header
    return value if value.isascii() else Header(value, "utf-8", header_name=name).encode()


def _address(value: str) -> str:
    value = " ".join(value.splitlines())
    if value.isascii():
        return value
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8")


IN_DOUBT = (
    "the connection broke while the mail server was receiving the email: it may have been "
    "delivered, so it is not sent again"
)


class SendFailed(Exception):
    """An email not sent: ``reason`` says why in words (it goes into ``email.failed``);
    ``cause`` is one of a few fixed words, the label of ``relance_emails_failed_total``."""

    def __init__(self, reason: str, *, permanent: bool, cause: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.cause = cause


class SmtpConnection:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self._options = {"hostname": host, "port": port, "timeout": timeout}
        self._username, self._password, self._starttls = username, password, starttls
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, message: Message) -> None:
        """Hand the message to the server; raises :class:`SendFailed`."""
        sender = extract_sender(message) or ""
        recipients = extract_recipients(message)
        utf8 = not (sender + "".join(recipients)).isascii()
        encoding = "utf-8" if utf8 else "ascii"
        transferring = False  # once the message is being sent, a broken line is no answer
        try:
            client, fresh = await self._connected()
            try:
                cte = await self._begin(client, sender, recipients, utf8)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if fresh:
                    raise
                # dropped while idle: nothing of this email reached the server yet
                await self.close()
                client, _ = await self._connected()
                cte = await self._begin(client, sender, recipients, utf8)
            for recipient in recipients:
                await client.rcpt(recipient, encoding=encoding)
            content = flatten_message(message, utf8=utf8, cte_type=cte)
            transferring = True
            await client.data(content)
        except aiosmtplib.SMTPNotSupported as exc:
            await self._reset()
            raise SendFailed(str(exc), permanent=True, cause="not_supported") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                await self._reset()
                raise SendFailed(
                    f"{exc.code} {exc.message}", permanent=True, cause="refused"
                ) from exc
            await self.close()
            raise SendFailed(
                f"{exc.code} {exc.message}", permanent=False, cause="temporary_error"
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            if transferring:
                # the server may have taken the email before the line broke: sending it again
                # could give the customer two, so the step ends here (at most once)
                raise SendFailed(f"{IN_DOUBT}: {exc!r}", permanent=True, cause="in_doubt") from exc
            raise SendFailed(
                f"mail server unreachable: {exc!r}", permanent=False, cause="unreachable"
            ) from exc

    @staticmethod
    async def _begin(
        client: aiosmtplib.SMTP, sender: str, recipients: list[str], utf8: bool
    ) -> str:
        """``MAIL FROM``; the transfer encoding the message is to be flattened with."""
        if not recipients:
            raise aiosmtplib.SMTPException("the message has no recipient")
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        options = []
        if utf8:
            if not client.supports_extension("SMTPUTF8"):
                raise aiosmtplib.SMTPNotSupported(
                    "an address is not ASCII and the mail server does not support SMTPUTF8"
                )
            options.append("SMTPUTF8")
        eight_bit = client.supports_extension("8BITMIME")
        if eight_bit:
            options.append("BODY=8BITMIME")
        await client.mail(sender, options=options, encoding="utf-8" if utf8 else "ascii")
        return "8bit" if eight_bit else "7bit"

    async def _reset(self) -> None:
        """End the refused transaction, keeping the connection if the server allows."""
        if self._client is not None:
            try:
                await self._client.rset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                await self.close()

    async def _connected(self) -> tuple[aiosmtplib.SMTP, bool]:
        """The open connection, or a new one; True if it is new."""
        if self._client is not None and self._client.is_connected:
            return self._client, False
        await self.close()
        client = aiosmtplib.SMTP(start_tls=self._starttls, **self._options)  # type: ignore[arg-type]
        await client.connect()
        if self._username:
            await client.login(self._username, self._password or "")
        self._client = client
        return client, True

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
