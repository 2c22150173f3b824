"""What a refusal or a failure becomes as an answer, the same in every service.

A use case refuses with one of :class:`Refusal`'s kinds (:class:`NotFound`,
:class:`Conflict`, :class:`Unprocessable`); one handler answers it as
``application/problem+json`` (RFC 9457), keeping the ``detail`` member clients read.


A route's transaction commits before its answer is sent (``relance.common.deps``), so a
commit that fails is still this request's to answer. Nothing was saved, and the answer must
say so rather than look like success:

- the database is away, out of resources or chose this transaction as a victim (connection
  lost, disk full, serialization failure, deadlock, no pooled connection free in time):
  503 with ``Retry-After``, since the same request may well succeed a moment later;
- a constraint refused the change (a unique key taken by a concurrent request, a deferred
  check at commit): 409, since retrying the same request would be refused again.

Anything else is a fault of the service: 500, logged with its traceback; nothing was saved
either, since the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
import sqlalchemy.exc
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from relance.common.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Refusal(Exception):
    """A request the rules refuse: its status and a sentence that says why."""

    status: ClassVar[int] = 400

    def detail(self) -> Any:
        return str(self)


class NotFound(Refusal):
    """No such resource in the caller's organization (another organization's looks the same)."""

    status = 404

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Conflict(Refusal):
    """The request contradicts the resource's state."""

    status = 409


class Unprocessable(Refusal):
    """Well-formed, but a business rule refuses ``field``: answered in the shape of
    FastAPI's validation errors, so a client reads every 422 the same way."""

    status = 422

    def __init__(self, field: str, message: str, *, where: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.where = where  # body, query or path, as FastAPI's own errors say

    def detail(self) -> Any:
        return [{"loc": [self.where, self.field], "msg": str(self), "type": "value_error"}]


def problem(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document; ``detail`` is what clients of this API read."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    return JSONResponse(
        {**body, "detail": detail}, status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


async def refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, Refusal)
    return problem(error.status, error.detail())


RETRY_AFTER_SECONDS = 1

# SQLSTATE classes of a transaction the server gave up on, not of the data: 40 is
# "transaction rollback" (serialization failure, deadlock), 08 a connection exception,
# 53 insufficient resources (disk full, out of memory, too many connections), 57P01-57P03
# the server shutting down or not accepting connections yet.
_TRANSIENT_SQLSTATES = ("40", "08", "53", "57P01", "57P02", "57P03")


def is_transient(error: BaseException) -> bool:
    """Whether the database failed the work for a reason that a retry may not meet."""
    if isinstance(error, sqlalchemy.exc.TimeoutError):  # no pooled connection in time
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if error.connection_invalidated or isinstance(
            error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
        ):
            return True
        return _transient_sqlstate(error.orig)
    if isinstance(error, asyncpg.PostgresError):  # a hot path on asyncpg's own connection
        return _transient_sqlstate(error)
    return isinstance(error, asyncpg.InterfaceError | ConnectionError | OSError)


def _transient_sqlstate(error: BaseException | None) -> bool:
    sqlstate = getattr(error, "sqlstate", None) or ""
    return sqlstate.startswith(_TRANSIENT_SQLSTATES)


def _refused_by_constraint(error: Exception) -> bool:
    return isinstance(
        error, sqlalchemy.exc.IntegrityError | asyncpg.IntegrityConstraintViolationError
    )


async def database_failed(request: Request, error: Exception) -> Response:
    if _refused_by_constraint(error) and not is_transient(error):
        log.warning("change refused by a constraint", path=request.url.path, error=repr(error))
        return problem(409, "the change conflicts with another one and was not saved")
    if is_transient(error):
        log.warning(
            "database unavailable, change not saved", path=request.url.path, error=repr(error)
        )
        return problem(
            503,
            "the database is unavailable: nothing was saved; retry in a moment",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("database error, change not saved", path=request.url.path, exc_info=error)
    return problem(500, "internal error: nothing was saved")


ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    Refusal: refused,
    sqlalchemy.exc.DBAPIError: database_failed,
    sqlalchemy.exc.TimeoutError: database_failed,
    asyncpg.PostgresError: database_failed,
    asyncpg.InterfaceError: database_failed,
    ConnectionError: database_failed,
}
