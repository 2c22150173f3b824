"""Every route of the four services, every text it takes: a NUL or a lone surrogate there is
a 422 naming the field, and nothing is written.

The cases come from each service's own OpenAPI document, by a generator of our own rather
than schemathesis: the property is about *every* string (each path, query and header
parameter, each string at any depth of a JSON body, object keys, form fields, statement
files), so the cases are enumerated, each string once with each bad character, around a
body that is otherwise plausible. Random generation would reach only some of them, and
would mostly be refused for other reasons. Each request goes to the app in-process, on a
real database of the service, with a real organization's key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from relance.common.clock import FrozenClock
from relance.common.events import Event
from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.types import OrganizationSnapshot
from relance.common.inbox import claim_event
from relance.common.service import ServiceSpec, create_app
from relance.common.tenancy import api_key_sha256
from relance.invoice_api.app import SPEC as INVOICE_API
from relance.invoice_api.schemas import PartnerEventIn
from relance.notifier.app import SPEC as NOTIFIER
from relance.payment_matcher.app import SPEC as PAYMENT_MATCHER
from relance.scheduler.app import SPEC as SCHEDULER

ADMIN = "fuzz-admin-token"
KEY = "rk_fuzz-unstorable-text"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BAD = {"NUL": "x\x00y", "surrogate": "x\udacey"}
# routes that read their body themselves, so the document does not describe it
UNDOCUMENTED_BODIES = {("POST", "/v1/partner-events"): PartnerEventIn.model_json_schema()}
CSV = b"booked_on,amount,currency,remittance_info\n2026-03-01,10.00,EUR,FA-1\n"


@dataclass
class Case:
    method: str
    path: str
    where: str  # "path", "query", "header", "body" or "form"
    loc: list[Any]  # where the bad text is, as the 422 should name it
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    form: dict[str, str] | None = None
    file: bytes | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.loc}"


class Schemas:
    """Plausible values for the schemas of one OpenAPI document."""

    def __init__(self, document: dict[str, Any], ids: dict[str, str]) -> None:
        self.components = dict(document.get("components", {}).get("schemas", {}))
        for schema in UNDOCUMENTED_BODIES.values():
            self.components.update(schema.get("$defs", {}))
        self.ids = ids

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        for combined in ("anyOf", "oneOf", "allOf"):
            if combined in schema:
                options = [o for o in schema[combined] if o.get("type") != "null"]
                return self.resolve({**options[0], **_without(schema, combined)})
        return schema

    def example(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if "enum" in schema or "const" in schema:
            return schema.get("enum", [schema.get("const")])[0]
        if kind == "object" or "properties" in schema:
            value = {k: self.example(s, k) for k, s in schema.get("properties", {}).items()}
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and not value:
                value["key"] = self.example(extra)
            return value
        if kind == "array":
            return [self.example(schema.get("items", {}), name)]
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.5
        if kind == "boolean":
            return True
        return self.string(schema, name)

    def string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if name in self.ids:
            return self.ids[name]
        return {
            "date": "2026-03-02",
            "date-time": "2026-03-02T10:00:00+00:00",
            "uuid": str(uuid.uuid4()),
            "email": "compta@martin.example",
            "binary": "",
        }.get(fmt or "", "Texte")

    def strings(self, value: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """The place of every string in ``value``."""
        if isinstance(value, str):
            yield loc
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from self.strings(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from self.strings(item, (*loc, index))


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _replaced(value: Any, loc: tuple[Any, ...], new: Any) -> Any:
    if not loc:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[loc[0]] = _replaced(value[loc[0]], loc[1:], new)
    return copy


def cases(document: dict[str, Any], ids: dict[str, str]) -> Iterator[Case]:
    """Each string the service takes, holding each bad character in turn."""
    schemas = Schemas(document, ids)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield from _operation_cases(schemas, method.upper(), path, operation)


def _operation_cases(
    schemas: Schemas, method: str, path: str, operation: dict[str, Any]
) -> Iterator[Case]:
    parameters = operation.get("parameters", [])
    path_params = {
        p["name"]: str(schemas.example(p["schema"], p["name"]))
        for p in parameters
        if p["in"] == "path"
    }
    content = operation.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema")
    body_schema = body_schema or UNDOCUMENTED_BODIES.get((method, path))
    body = schemas.example(body_schema) if body_schema else None
    base: dict[str, Any] = {"method": method, "path": path, "path_params": path_params}
    encoded = json.dumps(body).encode() if body is not None else None
    for what, bad in BAD.items():
        for p in parameters:
            if schemas.resolve(p["schema"]).get("type") not in ("string", None):
                continue  # an integer parameter: refused as such whatever the guard does
            if p["in"] == "path" and what == "surrogate":
                continue  # a URL cannot carry one: it is decoded with replacement characters
            loc = [p["in"], p["name"]]
            if p["in"] == "path":
                params = {**path_params, p["name"]: bad}
                yield Case(
                    **{**base, "path_params": params}, where="path", loc=loc, content=encoded
                )
            elif p["in"] == "query" and what == "NUL":
                yield Case(**base, where="query", loc=loc, query={p["name"]: bad}, content=encoded)
            elif p["in"] == "header" and what == "NUL":
                yield Case(
                    **base, where="header", loc=loc, headers={p["name"]: bad}, content=encoded
                )
        if body is not None:
            for place in schemas.strings(body):
                # ensure_ascii: the bad characters travel as \u0000 and \udace escapes
                content_ = json.dumps(_replaced(body, place, bad)).encode()
                yield Case(**base, where="body", loc=["body", *place], content=content_)
            if isinstance(body, dict):
                content_ = json.dumps({**body, bad: "value"}).encode()
                yield Case(**base, where="body", loc=["body"], content=content_)
        multipart = content.get("multipart/form-data", {}).get("schema")
        if multipart is not None:
            yield from _form_cases(schemas, base, multipart, what, bad)


def _form_cases(
    schemas: Schemas, base: dict[str, Any], schema: dict[str, Any], what: str, bad: str
) -> Iterator[Case]:
    properties = schemas.resolve(schema)["properties"]
    fields = [name for name, s in properties.items() if not _is_file(schemas.resolve(s))]
    for name in fields:
        if what == "NUL":  # a form field's bytes are UTF-8: no surrogate can be written
            yield Case(**base, where="form", loc=["body", name], form={name: bad}, file=CSV)
    # a JSON form field (the CSV mapping) may hold escapes
    mapping = json.dumps({"remittance_info": bad})
    yield Case(**base, where="form", loc=["body", "mapping"], form={"mapping": mapping}, file=CSV)
    if what == "NUL":
        yield from _file_cases(base)


def _is_file(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "binary" or "contentMediaType" in schema


def _file_cases(base: dict[str, Any]) -> Iterator[Case]:
    """Statement files whose decoded text holds a NUL or a lone surrogate: a 422 saying where."""
    header_nul = CSV.replace(b"currency", b"curr\x00ency")
    row_nul = CSV.replace(b"FA-1", b"FA\x001")
    # UTF-16 (with its byte order mark) holding a lone high surrogate in the last row
    utf16 = ("\ufeff" + CSV.decode()).encode("utf-16-le").replace(b"F\x00A\x00", b"\x00\xd8")
    mt940 = (
        b":20:STMT\n:25:FR7630006000011234567890189\n:28C:1\n:60F:C260301EUR0,00\n"
        b":61:2603010301C10,00NTRFNONREF\n:86:FA\x001\n:62F:C260301EUR10,00\n"
    )
    for content in (header_nul, row_nul, utf16, mt940):
        yield Case(**base, where="file", loc=["body", "file"], file=content)


async def snapshot(database: Any) -> dict[str, tuple[int, int]]:
    """Each table's row count and a hash of its rows."""
    async with database.transaction() as s:
        tables = (
            await s.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            )
        ).scalars()
        query = " UNION ALL ".join(
            # table names from pg_tables
            f"SELECT '{t}', count(*), coalesce(sum(hashtext(r::text)::bigint), 0) FROM \"{t}\" r"  # noqa: S608
            for t in tables
        )
        return {row[0]: (row[1], row[2]) for row in await s.execute(text(query))}


async def seed(
    spec: ServiceSpec, app: Any, client: httpx.AsyncClient
) -> tuple[str, dict[str, str]]:
    """A real organization (and, on the invoice-api, a customer and a sent invoice)."""
    if spec is INVOICE_API:
        org = await client.post(
            "/v1/organizations", json={"name": "Fuzz"}, headers={"X-Admin-Token": ADMIN}
        )
        key = org.json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        customer = (await client.post("/v1/customers", json={"name": "C"}, headers=auth)).json()
        invoice = {
            "customer_id": customer["id"],
            "number": "F-1",
            "issue_date": "2026-03-01",
            "due_date": "2026-03-31",
            "total": "100.00",
            "sent_at": "2026-03-01T10:00:00+00:00",
        }
        sent = (await client.post("/v1/invoices", json=invoice, headers=auth)).json()
        assert (await client.post("/v1/partner-secret", headers=auth)).status_code < 300
        return key, {"customer_id": customer["id"], "invoice_id": sent["id"]}
    org_id = uuid.uuid4()
    event = Event.new(
        OrganizationSaved(
            organization_id=org_id,
            organization=OrganizationSnapshot(id=org_id, name="Fuzz"),
            api_key_sha256=api_key_sha256(KEY),
        ),
        source="test",
        organization_id=org_id,
        time=NOW,
    )
    async with app.state.runtime.database.transaction() as s:
        assert await claim_event(s, event.id, event.type)
        await spec.handlers[event.type](s, event)
    return KEY, {}


def request_of(case: Case, key: str) -> dict[str, Any]:
    path = case.path
    for name, value in case.path_params.items():
        # percent-encoded as a client would; the NUL arrives as %00
        path = path.replace("{" + name + "}", quote(value, safe=""))
    headers = {"Authorization": f"Bearer {key}", "X-Admin-Token": ADMIN, **case.headers}
    kwargs: dict[str, Any] = {"method": case.method, "url": path, "params": case.query or None}
    if case.file is not None:
        kwargs["files"] = {"file": ("statement.csv", case.file, "text/csv")}
        kwargs["data"] = case.form
    elif case.content is not None:
        kwargs["content"] = case.content
        headers["content-type"] = "application/json"
    kwargs["headers"] = headers
    return kwargs


def says_why(case: Case, message: str) -> bool:
    if case.where == "file":  # a file's text may also fail to decode: the line is named
        return "line " in message
    return "NUL" in message or "surrogate" in message


@pytest.mark.parametrize(
    "spec", [INVOICE_API, SCHEDULER, NOTIFIER, PAYMENT_MATCHER], ids=lambda spec: spec.name
)
async def test_unstorable_text_anywhere_is_a_422_naming_it_and_writes_nothing(make_database, spec):
    settings = spec.settings_cls(
        database_url=await make_database(spec.package), admin_token=ADMIN, run_consumers=False
    )
    # no lifespan: no relay or consumer runs, so the tables change only by the requests
    app = create_app(spec, settings, FrozenClock(NOW))
    database = app.state.runtime.database
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{spec.name}") as client:
        key, ids = await seed(spec, app, client)
        before = await snapshot(database)
        failures, checked = [], 0
        for case in cases(app.openapi(), ids):
            answer = await client.request(**request_of(case, key))
            checked += 1
            problems = answer.json().get("detail") if answer.status_code == 422 else None
            named = isinstance(problems, list) and any(
                p.get("loc", [])[: len(case.loc)] == case.loc and says_why(case, p.get("msg", ""))
                for p in problems
            )
            if not named:
                failures.append(f"{case} -> {answer.status_code} {answer.text[:300]}")
            if (after := await snapshot(database)) != before:
                failures.append(f"{case} wrote: {before} -> {after}")
                before = after
    await database.dispose()
    assert checked > 0
    assert not failures, "\n".join(failures)
