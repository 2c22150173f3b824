"""Pages of a list, by cursor: the ``(time, key)`` of a page's last row, opaque to clients.

A cursor (rather than an offset) keeps a page right while rows are being added. Every
service's list routes answer a :class:`Page` and read ``?cursor=`` with
:func:`decode_cursor`; a cursor this API did not make is a 422 (:func:`bad_cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

T = TypeVar("T")


class BadCursor(ValueError):
    """The pagination cursor was not made by this API."""


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
        raise BadCursor("invalid cursor") from exc


def decode_uuid_cursor(cursor: str) -> tuple[datetime, UUID]:
    """A cursor whose key is a row's UUID."""
    at, key = decode_cursor(cursor)
    try:
        return at, UUID(key)
    except ValueError as exc:
        raise BadCursor("invalid cursor") from exc


async def bad_cursor(_: Request, exc: Exception) -> JSONResponse:
    """The answer to a :class:`BadCursor`, for a service's exception handlers."""
    return JSONResponse(
        {"detail": [{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}]},
        status_code=422,
    )
