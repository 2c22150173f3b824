"""The email of one step, and the SMTP connection that sends it.

The ``Message-ID`` is derived from the step id, so a step's email can be recognised
wherever it lands. The connection is long-lived and reopened when the server dropped it;
an answer code of 500 or more is a permanent refusal, anything else a temporary failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from uuid import UUID

import aiosmtplib

from relance.common.logging import get_logger
from relance.notifier.rendering import RenderedMail

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


def build_message(envelope: Envelope, mail: RenderedMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = envelope.sender
    message["To"] = envelope.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    message["X-Invoice-Id"] = str(envelope.invoice_id)
    message["X-Reminder-Kind"] = envelope.kind
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


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

    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the server; raises :class:`SendFailed`."""
        try:
            client = await self._connected()
            await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise SendFailed(reason, permanent=min(codes, default=0) >= 500) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise SendFailed(f"{exc.code} {exc.message}", permanent=True) from exc
            await self.close()
            raise SendFailed(f"{exc.code} {exc.message}", permanent=False) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise SendFailed(f"mail server unreachable: {exc!r}", permanent=False) from exc

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            try:
                await self._client.noop()  # a connection idle for long may be gone
                return self._client
            except (aiosmtplib.SMTPException, OSError):
                await self.close()
        client = aiosmtplib.SMTP(start_tls=self._starttls, **self._options)  # type: ignore[arg-type]
        await client.connect()
        if self._username:
            await client.login(self._username, self._password or "")
        self._client = client
        return client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
