"""HTTP routes of invoice-api (docs/api.md): thin, they validate, call one use case, and
answer what it returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from relance.common.deps import RuntimeDep, SessionDep, runtime_of
from relance.common.money import quantize
from relance.common.paging import Page
from relance.common.signing import BadSignature, verify_signed
from relance.common.tenancy import admin_token_matches, api_key_sha256, bearer_key, unknown_key
from relance.invoice_api.repository import AnyRow, InvoiceFilters
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
from relance.invoice_api.service import (
    customers,
    invoices,
    organizations,
    partners,
    payments,
    reports,
)
from relance.invoice_api.service.customers import NewCustomer
from relance.invoice_api.service.invoices import CreatedInvoice, InvoiceState, NewInvoice
from relance.invoice_api.service.organizations import NewOrganization
from relance.invoice_api.service.partners import PartnerPaymentRecorded
from relance.invoice_api.service.payments import AnnouncedPayment, NewPayment
from relance.invoice_api.service.tenant import Tenant
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
            found = await organizations.tenant_of_key(s, rt.clock, key)
        if found is None:
            raise unknown_key()
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
    new = NewInvoice(
        customer_id=body.customer_id,
        number=body.number,
        issue_date=body.issue_date,
        due_date=body.due_date,
        currency=body.currency,
        total=body.total,
        invoice_text=body.invoice_text,
        payment_reference=body.payment_reference,
        external_id=body.external_id,
        sent_at=body.sent_at,
    )
    return invoice_view(await invoices.create_invoice(runtime_of(request).database, t, new))


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
    new = NewOrganization(
        name=body.name,
        country=body.country,
        timezone=body.timezone,
        locale=body.locale,
        reminder_time=body.reminder_time,
        sender_email=body.sender_email,
    )
    values, api_key = await organizations.create_organization(s, rt.clock, new)
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


@router.post("/customers", status_code=201, tags=["customers"])
async def create_customer(body: CustomerIn, t: TenantDep, s: SessionDep) -> CustomerOut:
    new = NewCustomer(
        name=body.name,
        email=body.email,
        locale=body.locale,
        ibans=body.ibans,
        external_id=body.external_id,
    )
    return customer_out(await customers.create_customer(s, t, new))


@router.get("/customers", tags=["customers"])
async def list_customers(
    t: TenantDep, s: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[CustomerOut]:
    page = await customers.list_customers(s, t, limit, cursor)
    return Page[CustomerOut](
        items=[customer_out(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/customers/{customer_id}", responses=NOT_FOUND, tags=["customers"])
async def get_customer(customer_id: UUID, t: TenantDep, s: SessionDep) -> CustomerOut:
    return customer_out(await customers.get_customer(s, t, customer_id))


@router.patch("/customers/{customer_id}", responses=NOT_FOUND, tags=["customers"])
async def update_customer(
    customer_id: UUID, body: CustomerPatch, t: TenantDep, s: SessionDep
) -> CustomerOut:
    changes = body.model_dump(exclude_unset=True)
    return customer_out(await customers.update_customer(s, t, customer_id, changes))


# Invoices


def invoice_view(invoice: InvoiceState | CreatedInvoice) -> InvoiceOut:
    """The answer for an invoice: one just created has no next step yet."""
    if isinstance(invoice, InvoiceState):
        row: AnyRow | CreatedInvoice = invoice.invoice
        next_step = invoice.next_step
    else:
        row, next_step = invoice, None
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
    filters = InvoiceFilters(
        status=status_, customer_id=customer_id, text=q, payment_detected=payment_detected
    )
    page = await invoices.list_invoices(s, t, filters, limit, cursor)
    return Page[InvoiceOut](
        items=[invoice_view(i) for i in page.items], next_cursor=page.next_cursor
    )


@router.get("/invoices/{invoice_id}", responses=NOT_FOUND, tags=["invoices"])
async def get_invoice(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    return invoice_view(await invoices.get_invoice(s, t, invoice_id))


@router.patch("/invoices/{invoice_id}", responses=NOT_FOUND, tags=["invoices"])
async def update_invoice(
    invoice_id: UUID, body: InvoicePatch, t: TenantDep, s: SessionDep
) -> InvoiceOut:
    changes = body.model_dump(exclude_unset=True)
    return invoice_view(await invoices.update_invoice(s, t, invoice_id, changes))


@router.post(
    "/invoices/{invoice_id}/send",
    responses={**NOT_FOUND, 409: {"description": "already sent"}},
    tags=["invoices"],
)
async def send_invoice(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    return invoice_view(await invoices.send_invoice(s, t, invoice_id))


@router.post(
    "/invoices/{invoice_id}/payments", status_code=201, responses=NOT_FOUND, tags=["payments"]
)
async def report_payment(
    invoice_id: UUID, body: PaymentIn, t: TenantDep, s: SessionDep
) -> PaymentOut:
    new = NewPayment(amount=body.amount, paid_on=body.paid_on, reference=body.reference)
    paid = await payments.report_payment(s, t, invoice_id, new)
    return PaymentOut(
        id=paid.id,
        invoice_id=invoice_id,
        amount=paid.amount,
        paid_on=body.paid_on,
        reference=body.reference,
        source="user",
        invoice=invoice_view(paid.invoice),
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
    announced = AnnouncedPayment(planned_on=body.planned_on, amount=body.amount)
    return invoice_view(await payments.schedule_payment(s, t, invoice_id, announced))


@router.post("/invoices/{invoice_id}/reminders/suspend", responses=NOT_FOUND, tags=["reminders"])
async def suspend_reminders(
    invoice_id: UUID, t: TenantDep, s: SessionDep, body: SuspendIn | None = None
) -> InvoiceOut:
    reason = body.reason if body else None
    return invoice_view(await invoices.suspend_reminders(s, t, invoice_id, reason))


@router.post("/invoices/{invoice_id}/collection", responses=NOT_FOUND, tags=["invoices"])
async def hand_to_collection(invoice_id: UUID, t: TenantDep, s: SessionDep) -> InvoiceOut:
    return invoice_view(await invoices.hand_to_collection(s, t, invoice_id))


@router.get("/invoices/{invoice_id}/reminders", responses=NOT_FOUND, tags=["reminders"])
async def list_reminders(invoice_id: UUID, t: TenantDep, s: SessionDep) -> Items[StepOut]:
    rows = await invoices.list_reminders(s, t, invoice_id)
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
    rows = await invoices.list_activity(s, t, invoice_id, limit)
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
    aging = await reports.aging(s, t, currency)
    return AgingReport(
        currency=aging.currency,
        as_of=aging.as_of,
        buckets={
            name: AgingBucket(
                invoice_count=count, customer_count=people, amount=quantize(amount, currency)
            )
            for name, (count, people, amount) in aging.buckets.items()
        },
    )


# Partners: their signed requests (Standard Webhooks), with the organization's API key too

MAX_PARTNER_BODY = 64 * 1024


@router.post("/partner-secret", status_code=201, tags=["partners"])
async def create_partner_secret(t: TenantDep, s: SessionDep) -> PartnerSecret:
    """A new secret for the organization's partner to sign its requests with. It replaces the
    previous one at once; give it to the partner right away."""
    return PartnerSecret(secret=await partners.new_partner_secret(s, t))


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
    secret = await partners.partner_secret(s, t)
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
    data = event.data
    recorded = PartnerPaymentRecorded(
        type=event.type,
        invoice_number=data.invoice_number,
        external_id=data.external_id,
        payment=NewPayment(amount=data.amount, paid_on=data.paid_on, reference=data.reference),
    )
    applied = await partners.apply_partner_event(s, t, webhook_id, recorded)
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
