"""Pages of a list, by cursor: the ``(time, key)`` of a page's last row, opaque to clients.

A cursor (rather than an offset) keeps a page right while rows are being added. Every
service's list routes answer a :class:`Page` and read ``?cursor=`` with
:func:`decode_cursor`; a cursor this API did not make is a 422 (:class:`BadCursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

from relance.common.errors import Unprocessable

T = TypeVar("T")


class BadCursor(Unprocessable):
    """The pagination cursor was not made by this API."""

    def __init__(self) -> None:
        super().__init__("cursor", "invalid cursor", where="query")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


def encode_cursor(at: datetime, key: str | UUID) -> str:
    raw = json.dumps([at.isoformat(), str(key)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), str(key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor() from exc


def decode_uuid_cursor(cursor: str) -> tuple[datetime, UUID]:
    """A cursor whose key is a row's UUID."""
    at, key = decode_cursor(cursor)
    try:
        return at, UUID(key)
    except ValueError as exc:
        raise BadCursor() from exc
