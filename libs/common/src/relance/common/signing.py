"""Standard Webhooks 1.0 signatures, both ways: the notifier signs what it delivers to
partners, invoice-api verifies what partners send it. Pure, with the time given.

The signature itself is the ``standardwebhooks`` package's. Verifying is done here rather
than with its ``Webhook.verify`` for two reasons: that method reads the wall clock (here
every "now" is the injected clock's), and headers a stranger can shape (a signature without
a comma, bad base64, a body that is not UTF-8) make it raise plain ``ValueError`` or
``binascii.Error``, which would be a 500 instead of a 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
TOLERANCE = timedelta(minutes=5)
MAX_ID_LENGTH = 200


class BadSignature(Exception):
    """The request is not signed by the holder of the secret, or not now: a 401."""


def new_webhook_secret() -> str:
    """A fresh secret, 256 random bits in the ``whsec_<base64>`` form partners expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, at: datetime, payload: str) -> dict[str, str]:
    """The headers of a delivery of ``payload`` (the exact body) as message ``message_id``."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, payload),
        "content-type": "application/json",
    }


def verify_signed(secret: str, body: bytes, headers: Mapping[str, str], now: datetime) -> str:
    """The ``webhook-id`` of a request whose headers sign ``body`` with ``secret`` at a time
    within five minutes of ``now``; raises ``BadSignature`` saying what is wrong otherwise.
    Signatures are compared in constant time; any ``v1`` one of the space-separated list
    may match (a partner rotating its secret sends two)."""
    message_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not (message_id and stamp and given):
        raise BadSignature("send the webhook-id, webhook-timestamp and webhook-signature headers")
    if len(message_id) > MAX_ID_LENGTH:
        raise BadSignature(f"webhook-id is longer than {MAX_ID_LENGTH} characters")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise BadSignature("webhook-timestamp must be the Unix time in seconds")
    at = datetime.fromtimestamp(int(stamp), tz=UTC)
    if abs(at - now) > TOLERANCE:
        raise BadSignature("webhook-timestamp is more than 5 minutes away from now")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadSignature("the body is not UTF-8 text") from None
    expected = _digest(Webhook(secret).sign(message_id, at, text))
    for versioned in given.split():
        version, _, encoded = versioned.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return message_id
    raise BadSignature("no webhook-signature matches the body with this organization's secret")


def _digest(signature: str) -> bytes:
    return base64.b64decode(signature.partition(",")[2])
