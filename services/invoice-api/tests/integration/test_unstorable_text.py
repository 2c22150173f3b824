"""Text PostgreSQL cannot store (NUL, a lone surrogate) is refused with a 422 naming the
field, wherever it comes in, and nothing is saved."""

from __future__ import annotations

import pytest


def raw_json(text: str) -> bytes:
    """A JSON body written by hand: a client's JSON encoder may refuse a lone surrogate,
    a hand-written ``\\ud800`` escape is still valid JSON."""
    return text.encode()


async def send(api, method: str, path: str, body: bytes, **headers: str):
    return await api.client.request(
        method,
        path,
        content=body,
        headers={**api.headers(), "content-type": "application/json", **headers},
    )


@pytest.mark.parametrize("escape", ["\\ud800", "\\u0000", "\\udace", "\\uDFFF"])
async def test_a_customer_name_with_unstorable_text_is_refused_and_not_saved(api, escape):
    await api.as_new_organization()
    answer = await send(api, "POST", "/v1/customers", raw_json(f'{{"name": "x{escape}y"}}'))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "name"]
    assert (await api.get("/v1/customers")).json()["items"] == []


async def test_unstorable_text_deep_in_a_body_is_named_by_its_place(api):
    await api.as_new_organization()
    body = raw_json('{"name": "Martin", "ibans": ["FR76\\u0000"]}')
    answer = await send(api, "POST", "/v1/customers", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "ibans", 0]


async def test_a_surrogate_written_as_utf8_bytes_is_refused_too(api):
    # json.loads lets a surrogate encoded in UTF-8 through: it must not reach the database
    await api.as_new_organization()
    answer = await send(api, "POST", "/v1/customers", b'{"name": "x\xed\xa0\x80y"}')
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "name"]


async def test_a_nul_in_a_query_parameter_or_the_path_is_refused(api):
    await api.as_new_organization()
    query = await api.client.get("/v1/invoices?q=a%00b", headers=api.headers())
    assert query.status_code == 422, query.text
    assert query.json()["detail"][0]["loc"] == ["query", "q"]
    path = await api.client.get("/v1/invoices/ab%00cd", headers=api.headers())
    assert path.status_code == 422, path.text
    assert path.json()["detail"][0]["loc"] == ["path", "invoice_id"]


async def test_a_body_that_is_not_utf8_gets_a_client_error_not_a_server_error(api):
    await api.as_new_organization()
    answer = await send(
        api, "POST", "/v1/customers", b"\xed\xa0\x80 not json", **{"content-type": "text/plain"}
    )
    assert answer.status_code == 422, answer.text
