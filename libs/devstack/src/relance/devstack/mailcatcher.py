"""An SMTP server that accepts every message and keeps it on disk as an ``.eml`` file."""

from __future__ import annotations

import email
import email.policy
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


class _KeepOnDisk:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._sequence = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            self._sequence += 1
            name = f"{time.time_ns()}-{self._sequence:06d}-{uuid.uuid4().hex[:8]}.eml"
        recipients = ", ".join(str(r) for r in envelope.rcpt_tos)
        header = f"X-Catcher-Mail-From: {envelope.mail_from}\r\nX-Catcher-Rcpt-To: {recipients}\r\n"
        partial = self.folder / (name + ".part")
        partial.write_bytes(header.encode() + content)
        partial.rename(self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class MailCatcher:
    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self.port = port
        folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_KeepOnDisk(folder), hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        """Every message caught so far, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found
