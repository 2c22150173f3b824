"""HTTP routes of invoice-api (docs/api.md): thin, they validate, call an operation, answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.deps import RuntimeDep, SessionDep, runtime_of
from relance.common.errors import NotFound, Unprocessable
from relance.common.money import is_currency, quantize
from relance.common.paging import Page, encode_cursor
from relance.common.signing import BadSignature, verify_signed
from relance.common.tenancy import admin_token_matches, api_key_sha256, bearer_key, unknown_key
from relance.invoice_api import operations as ops
from relance.invoice_api import repository as repo
from relance.invoice_api.operations import Tenant
from relance.invoice_api.repository import AnyRow
from relance.invoice_api.schemas import (
    ActivityOut,
    AgingBucket,
    AgingReport,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    InvoiceIn,
    InvoiceOut,
    InvoicePatch,
    Items,
    NextStep,
    OrganizationCreated,
    OrganizationIn,
    PartnerEventIn,
    PartnerEventOut,
    PartnerSecret,
    PaymentIn,
    PaymentOut,
    PaymentScheduleIn,
    ScheduledPayment,
    StepOut,
    SuspendIn,
)
from relance.invoice_api.status import InvoiceStatus

router = APIRouter(prefix="/v1")


class Tenants:
    """The tenants of API keys (by the keys' SHA-256), kept ``TTL_SECONDS`` once read.

    Every request needs its organization; reading it once per key and 30 s rather than on
    every request saves a round trip. An organization and its key do not change once created
    (no route changes or deletes them), so only a change made in the database by hand would
    take up to 30 s to show. Unknown keys are not kept: guessing cannot fill the cache."""

    TTL_SECONDS = 30.0
    MAX_ENTRIES = 10_000

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Tenant]] = {}

    def get(self, key_sha256: str) -> Tenant | None:
        entry = self._entries.get(key_sha256)
        if entry is None:
            return None
        if entry[0] <= self._monotonic():
            del self._entries[key_sha256]
            return None
        return entry[1]

    def put(self, key_sha256: str, tenant: Tenant) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_sha256] = (self._monotonic() + self.TTL_SECONDS, tenant)


async def tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> Tenant:
    key = api_key_sha256(bearer_key(authorization))
    rt = runtime_of(request)
    tenants: Tenants | None = getattr(request.app.state, "tenants", None)
    if tenants is None:
        tenants = request.app.state.tenants = Tenants()
    found = tenants.get(key)
    if found is None:
        async with rt.database.transaction() as s:
            org = await repo.organization_by_key(s, key)
        if org is None:
            raise unknown_key()
        found = Tenant(org=org, clock=rt.clock)
        tenants.put(key, found)
    return found


TenantDep = Annotated[Tenant, Depends(tenant)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor of the previous page")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such resource in this organization"}
}


# Creating invoices: first of the routes, as the most frequent request (FastAPI tries the
# routes in order, each at some cost)


@router.post("/invoices", status_code=201, tags=["invoices"])
async def create_invoice(body: InvoiceIn, t: TenantDep, request: Request) -> InvoiceOut:
    return invoice_view(await ops.create_invoice(runtime_of(request).database, t, body), None)


# Organizations


@router.post(
    "/organizations", status_code=201, response_model=OrganizationCreated, tags=["organizations"]
)
async def create_organization(
    body: OrganizationIn,
    rt: RuntimeDep,
    s: SessionDep,
    x_admin_token: Annotated[str | None, Header()] = None,
) -> OrganizationCreated:
    expected = rt.settings.admin_token.get_secret_value() if rt.settings.admin_token else None
    if not admin_token_matches(x_admin_token, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="a valid X-Admin-Token is required"
        )
    values, api_key = await ops.create_organization(s, rt.clock, body)
    return OrganizationCreated(
        **{k: v for k, v in values.items() if k not in ("api_key_sha256", "reminder_time")},
        reminder_time=values["reminder_time"].strftime("%H:%M"),
        api_key=api_key,
    )


# Customers


def customer_out(row: AnyRow) -> CustomerOut:
    return CustomerOut(
        id=row.id,
        name=row.name,
        email=row.email,
        locale=row.locale,
        ibans=list(row.ibans or []),
        external_id=row.external_id,
        created_at=row.created_at,
    )


async def _customer(s: AsyncSession, t: Tenant, customer_id: UUID) -> CustomerOut:
    row = await repo.get_customer(s, t.id, customer_id)
    if row is None:
        raise NotFound("customer")
    return customer_out(row)


@router.post("/customers", status_code=201, tags=["customers"])
async def create_customer(body: CustomerIn, t: TenantDep, s: SessionDep) -> CustomerOut:
    return await _customer(s, t, await ops.create_customer(s, t, body))


@router.get("/customers", tags=["customers"])
async def list_customers(
    t: TenantDep, s: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[CustomerOut]:
    rows = await repo.list_customers(s, t.id, limit, cursor)
    return Page[CustomerOut](
        items=[customer_out(r) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id)
        if len(rows) > limit
        else None,
    )


@router.get("/customers/{customer_id}", responses=NOT_FOUND, tags=["customers"])
async def get_customer(customer_id: UUID, t: TenantDep, s: SessionDep) -> CustomerOut:
    return await _customer(s, t, customer_id)


@router.patch("/customers/{customer_id}", responses=NOT_FOUND, tags=["customers"])
async def update_customer(
    customer_id: UUID, body: CustomerPatch, t: TenantDep, s: SessionDep
) -> CustomerOut:
    await ops.update_customer(s, t, customer_id, body)
    return await _customer(s, t, customer_id)


# Invoices


async def invoice_views(s: AsyncSession, t: Tenant, rows: list[AnyRow]) -> list[InvoiceOut]:
    steps = await repo.next_steps(s, t.id, [r.id for r in rows])
    return [invoice_view(r, steps.get(r.id)) for r in rows]


def invoice_view(row: AnyRow | ops.NewInvoice, next_step: AnyRow | None) -> InvoiceOut:
    currency = row.currency
    scheduled = None
    if row.scheduled_payment_on is not None and row.status == InvoiceStatus.SCHEDULED:
        scheduled = ScheduledPayment(
            planned_on=row.scheduled_payment_on,
            amount=row.scheduled_payment_amount,
            until=row.scheduled_until,
        )
    return InvoiceOut(
        id=row.id,
        number=row.number,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        status=InvoiceStatus(row.status),
        currency=currency,
        total=quantize(row.total, currency),
        paid=quantize(row.paid, currency),
        balance=quantize(row.total - row.paid, currency),
        issue_date=row.issue_date,
        due_date=row.due_date,
        sent_at=row.sent_at,
        imported=row.imported,
        payment_detected=row.payment_detected,
        reminders_suspended=row.reminders_suspended_at is not None,
        in_collection=row.in_collection_at is not None,
        scheduled_payment=scheduled,
        next_step=next_step_view(next_step)
        if next_step is not None and row.reminders_suspended_at is None
        else None,
        invoice_text=row.invoice_text,
        payment_reference=row.payment_reference,
        external_id=row.external_id,
        created_at=row.created_at,
    )


def next_step_view(step: AnyRow) -> NextStep:
    return NextStep(
        kind=step.kind,
        scheduled_for=step.goes_at or step.scheduled_for,
        planned_for=step.scheduled_for,
        held=step.held,
        hold_reason=step.hold_reason,
        goes_at=step.goes_at,
    )


async def _invoice(s: AsyncSession, t: Tenant, invoice_id: UUID) -> InvoiceOut:
    row = await ops.require_invoice(s, t, invoice_id)
    (view,) = await invoice_views(s, t, [row])
    return view


@router.get("/invoices", tags=["invoices"])
async def list_invoices(
    t: TenantDep,
    s: SessionDep,
    status_: Annotated[InvoiceStatus | None, Query(alias="status")] = None,
    customer_id: UUID | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$")] = None,
    payment_detected: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[InvoiceOut]:
    filters = repo.InvoiceFilters(
        status=status_, customer_id=customer_id, text=q, payment_detected=payment_detected
    )
    rows = list(await repo.list_invoices(s, t.id, t.today(), filters, limit, cursor))
    page = rows[:limit]
    return Page[InvoiceOut](
        items=await invoice_views(s, t, page),
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None,
    )


@router.get("/invoices/{invoice_id}", responses=NOT_FOUND, tags=["invoices"])
async def get_invoice(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    return await _invoice(s, t, invoice_id)


@router.patch("/invoices/{invoice_id}", responses=NOT_FOUND, tags=["invoices"])
async def update_invoice(
    invoice_id: UUID, body: InvoicePatch, t: TenantDep, s: SessionDep
) -> InvoiceOut:
    await ops.update_invoice(s, t, invoice_id, body)
    return await _invoice(s, t, invoice_id)


@router.post(
    "/invoices/{invoice_id}/send",
    responses={**NOT_FOUND, 409: {"description": "already sent"}},
    tags=["invoices"],
)
async def send_invoice(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    await ops.send_invoice(s, t, invoice_id)
    return await _invoice(s, t, invoice_id)


@router.post(
    "/invoices/{invoice_id}/payments", status_code=201, responses=NOT_FOUND, tags=["payments"]
)
async def report_payment(
    invoice_id: UUID, body: PaymentIn, t: TenantDep, s: SessionDep
) -> PaymentOut:
    payment_id = await ops.record_payment(s, t, invoice_id, body)
    invoice = await _invoice(s, t, invoice_id)
    return PaymentOut(
        id=payment_id,
        invoice_id=invoice_id,
        amount=quantize(body.amount, invoice.currency),
        paid_on=body.paid_on,
        reference=body.reference,
        source="user",
        invoice=invoice,
    )


@router.post(
    "/invoices/{invoice_id}/payment-schedule",
    status_code=201,
    responses=NOT_FOUND,
    tags=["payments"],
)
async def schedule_payment(
    invoice_id: UUID, body: PaymentScheduleIn, t: TenantDep, s: SessionDep
) -> InvoiceOut:
    await ops.schedule_payment(s, t, invoice_id, body)
    return await _invoice(s, t, invoice_id)


@router.post("/invoices/{invoice_id}/reminders/suspend", responses=NOT_FOUND, tags=["reminders"])
async def suspend_reminders(
    invoice_id: UUID, t: TenantDep, s: SessionDep, body: SuspendIn | None = None
) -> InvoiceOut:
    await ops.suspend_reminders(s, t, invoice_id, body.reason if body else None)
    return await _invoice(s, t, invoice_id)


@router.post("/invoices/{invoice_id}/collection", responses=NOT_FOUND, tags=["invoices"])
async def hand_to_collection(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    await ops.hand_to_collection(s, t, invoice_id)
    return await _invoice(s, t, invoice_id)


@router.get("/invoices/{invoice_id}/reminders", responses=NOT_FOUND, tags=["reminders"])
async def list_reminders(invoice_id: UUID, t: TenantDep, s: SessionDep) -> Items[StepOut]:
    await ops.require_invoice(s, t, invoice_id)
    rows = await repo.list_steps(s, t.id, invoice_id)
    return Items[StepOut](
        items=[
            StepOut(
                kind=r.kind,
                severity=r.severity,
                scheduled_for=r.scheduled_for,
                status=r.status,
                sent_at=r.sent_at,
                reason=r.reason,
                held=r.held,
                hold_reason=r.hold_reason,
                goes_at=r.goes_at,
            )
            for r in rows
        ]
    )


@router.get("/invoices/{invoice_id}/activity", responses=NOT_FOUND, tags=["invoices"])
async def list_activity(
    invoice_id: UUID, t: TenantDep, s: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 200
) -> Items[ActivityOut]:
    await ops.require_invoice(s, t, invoice_id)
    rows = await repo.list_activity(s, t.id, invoice_id, limit)
    return Items[ActivityOut](
        items=[ActivityOut(at=r.at, kind=r.kind, detail=r.detail) for r in rows]
    )


# Reports


@router.get("/reports/aging", tags=["reports"])
async def aging_report(
    t: TenantDep,
    s: SessionDep,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "EUR",
) -> AgingReport:
    if not is_currency(currency):
        raise Unprocessable("currency", f"{currency!r} is not an ISO 4217 currency code")
    today: date = t.today()
    buckets = await repo.aging(s, t.id, today, currency)
    return AgingReport(
        currency=currency,
        as_of=today,
        buckets={
            name: AgingBucket(
                invoice_count=count, customer_count=customers, amount=quantize(amount, currency)
            )
            for name, (count, customers, amount) in buckets.items()
        },
    )


# Partners: their signed requests (Standard Webhooks), with the organization's API key too

MAX_PARTNER_BODY = 64 * 1024


@router.post("/partner-secret", status_code=201, tags=["partners"])
async def create_partner_secret(t: TenantDep, s: SessionDep) -> PartnerSecret:
    """A new secret for the organization's partner to sign its requests with. It replaces the
    previous one at once; give it to the partner right away."""
    return PartnerSecret(secret=await ops.new_partner_secret(s, t))


@router.post(
    "/partner-events",
    tags=["partners"],
    responses={
        401: {"description": "no partner secret yet, or a bad or stale signature"},
        413: {"description": "body over 64 KiB"},
        422: {"description": "not a payment.recorded event, or no such invoice"},
    },
)
async def receive_partner_event(request: Request, t: TenantDep, s: SessionDep) -> PartnerEventOut:
    """A payment the partner recorded on its side becomes a payment here, once per webhook-id.
    The request is signed with the partner secret (headers webhook-id, webhook-timestamp
    within 5 minutes, webhook-signature)."""
    body = await _capped_body(request, MAX_PARTNER_BODY)
    secret = await repo.partner_secret(s, t.id)
    if secret is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this organization has no partner secret: create one with "
            "POST /v1/partner-secret and give it to the partner",
        )
    try:
        webhook_id = verify_signed(secret, body, request.headers, t.now())
    except BadSignature as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from None
    try:
        event = PartnerEventIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    applied = await ops.apply_partner_event(s, t, webhook_id, event)
    return PartnerEventOut(
        webhook_id=webhook_id,
        status="recorded" if applied.first_time else "already_applied",
        invoice_id=applied.invoice_id,
        payment_id=applied.payment_id,
    )


async def _capped_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, detail=f"body over {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
