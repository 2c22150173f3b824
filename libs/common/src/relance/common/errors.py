"""How a failure of the database becomes an answer, the same in every service.

A route's transaction commits before its answer is sent (``relance.common.deps``), so a
commit that fails is still this request's to answer. Nothing was saved, and the answer must
say so rather than look like success:

- the database is away or chose this transaction as a victim (connection lost, serialization
  failure, deadlock, no pooled connection free in time): 503 with ``Retry-After``, since the
  same request may well succeed a moment later;
- a constraint refused the change (a unique key taken by a concurrent request, a deferred
  check at commit): 409, since retrying the same request would be refused again.

Anything else is a fault of the service: 500, logged with its traceback; nothing was saved
either, since the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy.exc
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from relance.common.logging import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 1

# SQLSTATE classes of a transaction the server gave up on, not of the data: 40 is
# "transaction rollback" (serialization failure, deadlock), 08 a connection exception,
# 57P01-57P03 the server shutting down or not accepting connections yet.
_TRANSIENT_SQLSTATES = ("40", "08", "57P01", "57P02", "57P03", "53300")


def is_transient(error: BaseException) -> bool:
    """Whether the database failed the work for a reason that a retry may not meet."""
    if isinstance(error, sqlalchemy.exc.TimeoutError):  # no pooled connection in time
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if error.connection_invalidated or isinstance(
            error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
        ):
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    return isinstance(error, ConnectionError | OSError)


async def database_failed(request: Request, error: Exception) -> Response:
    if isinstance(error, sqlalchemy.exc.IntegrityError) and not is_transient(error):
        log.warning("change refused by a constraint", path=request.url.path, error=repr(error))
        return JSONResponse(
            {"detail": "the change conflicts with another one and was not saved"},
            status_code=409,
        )
    if is_transient(error):
        log.warning(
            "database unavailable, change not saved", path=request.url.path, error=repr(error)
        )
        return JSONResponse(
            {"detail": "the database is unavailable: nothing was saved; retry in a moment"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("database error, change not saved", path=request.url.path, exc_info=error)
    return JSONResponse({"detail": "internal error: nothing was saved"}, status_code=500)


DATABASE_ERROR_HANDLERS: dict[
    type[Exception], Callable[[Request, Exception], Awaitable[Response]]
] = {
    sqlalchemy.exc.DBAPIError: database_failed,
    sqlalchemy.exc.TimeoutError: database_failed,
}
