"""Refusals and database failures answer RFC 9457 problem documents that keep ``detail``."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from relance.common.errors import ERROR_HANDLERS, Conflict, NotFound, Unprocessable
from relance.common.paging import decode_cursor


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    for kind, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(kind, handler)

    @app.get("/thing")
    async def thing() -> None:
        raise error

    return app


async def answer_to(error: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_raising(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/thing")


async def test_a_missing_resource_is_a_404_problem_saying_what():
    answer = await answer_to(NotFound("invoice"))
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "invoice not found",
    }


async def test_a_conflict_is_a_409_with_its_reason():
    answer = await answer_to(Conflict("invoice FA-1 is already paid"))
    assert (answer.status_code, answer.json()["detail"]) == (409, "invoice FA-1 is already paid")


async def test_a_rule_refusing_a_field_answers_in_fastapis_validation_shape():
    answer = await answer_to(Unprocessable("amount", "amount exceeds the balance"))
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"loc": ["body", "amount"], "msg": "amount exceeds the balance", "type": "value_error"}
    ]


async def test_a_cursor_this_api_did_not_make_names_the_query_parameter():
    try:
        decode_cursor("not-a-cursor")
    except Unprocessable as error:
        answer = await answer_to(error)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (asyncpg.exceptions.SerializationError("could not serialize"), 503),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), 503),
        (asyncpg.exceptions.DiskFullError("no space left on device"), 503),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), 503),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), 409),
        (asyncpg.exceptions.UndefinedColumnError("no such column"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_a_failure_on_asyncpgs_own_connection_is_answered_like_sqlalchemys(error, status):
    """The hot paths (POST /v1/invoices, the matcher's bulk copy) use asyncpg directly."""
    answer = await answer_to(error)
    assert answer.status_code == status
    assert "nothing was saved" in answer.json()["detail"] or status == 409
    assert ("Retry-After" in answer.headers) == (status == 503)
