"""Text PostgreSQL cannot store is refused at the door, for every route of every service.

PostgreSQL ``text`` holds neither U+0000 (NUL) nor a lone UTF-16 surrogate (U+D800 to
U+DFFF without its pair: not a character, so not UTF-8 either). Both reach Python easily:
JSON's ``"\\u0000"`` and ``"\\ud800"`` escapes, ``%00`` in a URL. Left alone, they fail at
the insert as a 500, or earlier when an error message quotes them back.

:class:`TextGuard` is an ASGI middleware that ``create_app`` puts in front of every
service, so that no route can forget the rule. It answers 422, in FastAPI's shape
(``{"detail": [{"type", "loc", "msg"}]}``), naming the field, when:

- the path or a query parameter holds a NUL (a URL cannot carry a surrogate: Starlette
  decodes it as UTF-8 with replacement characters);
- a header holds a NUL;
- the JSON body holds a NUL or a lone surrogate in any string, at any depth, or in a key.

The body is checked as the route reads it, chunk by chunk (nothing is buffered ahead of
the route, which keeps its own size limits): a regular expression over the bytes looks
for what could decode to such a character, and only a suspect body is parsed as JSON and
walked to name the fields. A multipart body (a file upload) is not scanned, since files
are bytes; the text fields of a form use :data:`StoredText` and the file's own parser
checks the text it decodes with :func:`first_unstorable`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import AfterValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Loc = tuple[str | int, ...]

# Bytes that may decode to NUL or a lone surrogate: the JSON escapes \u0000 and \ud800 to
# \udfff, a raw NUL (also in every UTF-16 or UTF-32 body) and a surrogate encoded in UTF-8,
# which json.loads lets through.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\x00|\xed[\xa0-\xbf]")
_SUSPECT_SPAN = 5  # longest match minus one: kept from a chunk to scan with the next
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL = "a NUL character (U+0000)"


def first_unstorable(text: str) -> tuple[int, str] | None:
    """Where ``text`` holds its first character PostgreSQL cannot store, and what it is."""
    nul = text.find("\x00")
    surrogate = None if text.isascii() else _SURROGATE.search(text)
    if surrogate is not None and (nul < 0 or surrogate.start() < nul):
        return surrogate.start(), f"a lone surrogate (U+{ord(surrogate.group()):04X})"
    if nul >= 0:
        return nul, _NUL
    return None


def unstorable_message(what: str) -> str:
    return f"text must not contain {what}"


def check_storable(value: str) -> str:
    """Pydantic validator: the text unchanged, or ValueError naming the bad character."""
    found = first_unstorable(value)
    if found is not None:
        raise ValueError(unstorable_message(found[1]))
    return value


StoredText = Annotated[str, AfterValidator(check_storable)]
"""``str`` that PostgreSQL can store, for fields the middleware does not see (form fields)."""


def unstorable_in(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Each place in decoded JSON (strings, list items, object keys and values, at any
    depth) holding text PostgreSQL cannot store, with what it holds."""
    if isinstance(value, str):
        found = first_unstorable(value)
        if found is not None:
            yield loc, found[1]
    elif isinstance(value, dict):
        for key, item in value.items():
            found = first_unstorable(key)
            if found is not None:
                # the key itself cannot be quoted back: name the object and say why
                yield loc, f"a key holding {found[1]}"
            else:
                yield from unstorable_in(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_in(item, (*loc, index))


def _error(loc: Loc, what: str) -> dict[str, Any]:
    return {"type": "unstorable_text", "loc": list(loc), "msg": unstorable_message(what)}


class UnstorableText(HTTPException):
    """422 naming each field that holds text PostgreSQL cannot store. An HTTPException so
    that FastAPI passes it on unchanged when it is raised while the route reads its body."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(status_code=422, detail=errors)


class TextGuard:
    """ASGI middleware enforcing the rule above on every HTTP request (see module doc).

    Cost on a request that is clean (nearly all of them): a NUL search in the path, the
    query string and the headers, and one regular-expression scan of each body chunk.
    ``routers`` (the service's) name the path parameters, for the message only."""

    def __init__(self, app: ASGIApp, routers: Sequence[APIRouter]) -> None:
        self.app = app
        self.routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # one pass over the headers, for NULs and the content type (the fast path is kept
        # short: it runs on every request)
        multipart = header_nul = False
        for name, value in scope["headers"]:
            if b"\x00" in value:
                header_nul = True
            if name == b"content-type":
                multipart = value[:10].lower() == b"multipart/"
        query: bytes = scope["query_string"]
        if header_nul or "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            errors = self._url_and_headers(scope)
            if errors:
                await _send_422(send, errors)
                return
        await self.app(scope, receive if multipart else _checked_body(receive), send)

    def _url_and_headers(self, scope: Scope) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        if "\x00" in scope["path"]:
            errors.extend(self._path_errors(scope))
        for name, value in parse_qsl(
            scope["query_string"].decode("latin-1"), keep_blank_values=True
        ):
            found = first_unstorable(value)
            if found is not None:
                errors.append(_error(("query", name), found[1]))
        for name, value in scope["headers"]:
            if b"\x00" in value:
                errors.append(_error(("header", name.decode("latin-1")), _NUL))
        return errors

    def _path_errors(self, scope: Scope) -> list[dict[str, Any]]:
        for router in self.routers:
            for route in router.routes:
                pattern = getattr(route, "path_regex", None)
                matched = pattern.match(scope["path"]) if pattern is not None else None
                if matched is not None:
                    named = [
                        _error(("path", name), found[1])
                        for name, value in matched.groupdict().items()
                        if (found := first_unstorable(value)) is not None
                    ]
                    return named or [_error(("path",), _NUL)]
        return [_error(("path",), _NUL)]


def _checked_body(receive: Receive) -> Receive:
    """``receive`` that raises :class:`UnstorableText` when the body, once whole, holds
    text PostgreSQL cannot store."""
    chunks: list[bytes] = []
    tail = b""
    suspect = False

    async def checked() -> Message:
        nonlocal tail, suspect
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        if not suspect and (b"\\u" in chunk or b"\x00" in chunk or b"\xed" in chunk or tail):
            suspect = _SUSPECT.search(tail + chunk) is not None
        more = message.get("more_body", False)
        if more:
            chunks.append(chunk)
            tail = chunk[-_SUSPECT_SPAN:]
        elif suspect:
            errors = _body_errors(b"".join([*chunks, chunk]))
            chunks.clear()
            if errors:
                raise UnstorableText(errors)
        return message

    return checked


def _body_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        # decoded as Starlette's Request.json() does, so that what is checked is what the
        # route would get
        document = json.loads(body)
        return [_error(("body", *loc), what) for loc, what in unstorable_in(document)]
    except (ValueError, RecursionError):
        return []  # not JSON, or nested too deep: the route refuses it itself


async def _send_422(send: Send, errors: list[dict[str, Any]]) -> None:
    content = json.dumps({"detail": errors}, ensure_ascii=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


class _SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # a quoted input may hold a lone surrogate, which UTF-8 cannot encode: "?" instead
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "replace")


async def http_error(_: Request, exc: Exception) -> Response:
    """Starlette's answer to an HTTPException, safe as above when the detail quotes input."""
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=headers)
    return _SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a request that fails validation, with the inputs it quotes made
    printable: bytes that are not UTF-8 (a body sent as text/plain, say) and lone surrogates
    would otherwise make the error itself fail as a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    content = jsonable_encoder(
        {"detail": errors}, custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")}
    )
    return _SafeJSONResponse(content, status_code=422)
