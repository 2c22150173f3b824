"""The rule on text PostgreSQL cannot store: what counts, where it is found, and that the
middleware finds it however the body is written and cut into chunks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.common.textguard import TextGuard, first_unstorable, unstorable_in

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
BAD = st.one_of(st.just("\x00"), SURROGATES)
# text PostgreSQL stores: any character but NUL and the surrogates
GOOD_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(GOOD_TEXT)
def test_storable_text_passes(text):
    assert first_unstorable(text) is None


@given(GOOD_TEXT, BAD, GOOD_TEXT)
def test_the_first_bad_character_is_found_where_it_is(before, bad, after):
    found = first_unstorable(before + bad + after)
    assert found is not None
    assert found[0] == len(before)
    assert ("NUL" in found[1]) == (bad == "\x00")


def test_a_surrogate_pair_written_as_escapes_is_one_character_and_storable():
    assert first_unstorable(json.loads('"\\ud83d\\ude00"')) is None


json_values = st.recursive(
    st.none() | st.integers() | st.booleans() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


def _put(value: Any, bad: str, choice: int) -> Any:
    """``value`` with ``bad`` put into one of its strings (or as a new key)."""
    if isinstance(value, dict) and value and choice % 3 == 0:
        key = sorted(value)[choice % len(value)]
        return {**value, key: _put(value[key], bad, choice // 3)}
    if isinstance(value, dict):
        return {**value, f"k{bad}": 1}
    if isinstance(value, list) and value:
        index = choice % len(value)
        return [*value[:index], _put(value[index], bad, choice // 2), *value[index + 1 :]]
    return f"x{bad}y"


@given(json_values, BAD, st.integers(0, 1000))
def test_every_bad_string_at_any_depth_is_reported(value, bad, choice):
    assert list(unstorable_in(_clean(value))) == []
    assert list(unstorable_in(_put(_clean(value), bad, choice)))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if first_unstorable(value) is None else "clean"
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def test_the_place_is_named_as_fastapi_does():
    value = {"items": [{"name": "ok"}, {"name": "a\x00b"}], "k\udace": 1}
    assert list(unstorable_in(value)) == [
        (("items", 1, "name"), "a NUL character (U+0000)"),
        ((), "a key holding a lone surrogate (U+DACE)"),
    ]


# The middleware, on raw bytes cut into chunks as a server would hand them over


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(body: bytes, cut: int, content_type: bytes = b"application/json") -> Any:
    chunks = [body[:cut], body[cut:]]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/things",
        "query_string": b"",
        "headers": [(b"content-type", content_type)],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        await TextGuard(_inner, routers=[])(scope, receive, send)

    try:
        asyncio.run(run())
    except Exception as exc:  # FastAPI turns it into the 422; here it is looked at bare
        return exc
    return sent[0]["status"]


@given(
    st.dictionaries(st.text("abc", max_size=3), GOOD_TEXT, max_size=3),
    BAD,
    st.booleans(),
    st.data(),
)
def test_bad_text_is_caught_however_it_is_written_and_cut(fields, bad, ascii_only, data):
    body = json.dumps({**fields, "name": f"x{bad}y"}, ensure_ascii=ascii_only)
    raw = body.encode("utf-8", "surrogatepass")  # a surrogate as UTF-8 bytes, if not escaped
    cut = data.draw(st.integers(0, len(raw)))
    answer = _call(raw, cut)
    assert getattr(answer, "status_code", None) == 422
    assert answer.detail[0]["loc"] == ["body", "name"]


@given(st.dictionaries(GOOD_TEXT, GOOD_TEXT, max_size=3), st.booleans(), st.data())
def test_storable_text_goes_through_untouched(fields, ascii_only, data):
    raw = json.dumps(fields, ensure_ascii=ascii_only).encode()
    assert _call(raw, data.draw(st.integers(0, len(raw)))) == 200


@pytest.mark.parametrize("content_type", [b"multipart/form-data; boundary=x", b"MULTIPART/x"])
def test_a_multipart_body_is_left_to_the_form_fields_own_checks(content_type):
    assert _call(b'{"name": "x\\u0000y"}', 3, content_type) == 200
