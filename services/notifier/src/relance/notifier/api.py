"""HTTP routes of the notifier: partner webhook endpoints, their delivery log, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.signing import new_webhook_secret
from relance.common.tenants import AuthorizationHeader, Tenant, tenant_by_key
from relance.notifier import repository as repo
from relance.notifier.partners import WEBHOOK_TYPES, url_problem
from relance.notifier.settings import NotifierSettings

router = APIRouter(prefix="/v1", tags=["webhooks"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "not in this organization"}}

WebhookType = Literal[
    "invoice.sent",
    "invoice.status_changed",
    "invoice.paid",
    "reminder.sent",
    "reminder.failed",
    "reminders.suspended",
    "payment.detected",
    "payment.matched",
]
assert set(WebhookType.__args__) == set(WEBHOOK_TYPES)  # type: ignore[attr-defined]


async def tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(tenant)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    events: list[WebhookType] = Field(min_length=1, max_length=len(WEBHOOK_TYPES))

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        return sorted(set(events))


class EndpointOut(BaseModel):
    id: UUID
    url: str
    events: list[str]
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="shown once: verify each delivery's webhook-signature")


class Endpoints(BaseModel):
    items: list[EndpointOut]


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: UUID
    type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Deliveries(BaseModel):
    items: list[DeliveryOut]


def endpoint_out(row: Any) -> EndpointOut:
    return EndpointOut(
        id=row.id, url=row.url, events=list(row.event_types), created_at=row.created_at
    )


def delivery_out(row: Any) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        type=row.event_type,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


@router.post("/webhook-endpoints", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    body: EndpointIn, org: TenantDep, s: SessionDep, rt: RuntimeDep
) -> EndpointCreated:
    """Subscribe a partner URL to some message types. The secret is shown only here."""
    settings = rt.settings
    allowed = settings.allowed_webhook_hosts if isinstance(settings, NotifierSettings) else ()
    problem = url_problem(body.url, allowed)
    if problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem)
    values = {
        "id": uuid4(),
        "organization_id": org.id,
        "url": body.url,
        "event_types": body.events,
        "secret": new_webhook_secret(),
        "created_at": rt.clock.now(),
    }
    await repo.add_endpoint(s, values)
    return EndpointCreated(
        id=values["id"],
        url=body.url,
        events=body.events,
        created_at=values["created_at"],
        secret=values["secret"],
    )


@router.get("/webhook-endpoints")
async def list_endpoints(org: TenantDep, s: SessionDep) -> Endpoints:
    return Endpoints(items=[endpoint_out(row) for row in await repo.endpoints_of(s, org.id)])


@router.get("/webhook-endpoints/{endpoint_id}", responses=NOT_FOUND)
async def get_endpoint(endpoint_id: UUID, org: TenantDep, s: SessionDep) -> EndpointOut:
    row = await repo.endpoint(s, org.id, endpoint_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such webhook endpoint")
    return endpoint_out(row)


@router.delete(
    "/webhook-endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND
)
async def delete_endpoint(
    endpoint_id: UUID, org: TenantDep, s: SessionDep, rt: RuntimeDep
) -> Response:
    """Stop sending to it; what was still waiting is dropped, the log is kept."""
    if not await repo.delete_endpoint(s, org.id, endpoint_id, rt.clock.now()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such webhook endpoint")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", responses=NOT_FOUND)
async def list_deliveries(
    endpoint_id: UUID,
    org: TenantDep,
    s: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Deliveries:
    """The endpoint's delivery log, newest first."""
    if await repo.endpoint(s, org.id, endpoint_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such webhook endpoint")
    return Deliveries(
        items=[delivery_out(r) for r in await repo.deliveries_of(s, endpoint_id, limit)]
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: {"description": "the delivery is still being attempted"}},
)
async def replay(delivery_id: str, org: TenantDep, s: SessionDep, rt: RuntimeDep) -> DeliveryOut:
    """Send a delivery again now (after it failed for a day, or to resend one)."""
    if len(delivery_id) > 100:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such delivery")
    row = await repo.replay_delivery(s, org.id, delivery_id, rt.clock.now())
    if row is not None:
        return delivery_out(row)
    if await repo.delivery_of(s, org.id, delivery_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such delivery")
    raise HTTPException(status.HTTP_409_CONFLICT, detail="the delivery is still being attempted")
