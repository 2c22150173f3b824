"""HTTP routes of partner webhooks: endpoints, their delivery log, replay."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.tenants import TenantDep
from relance.notifier.webhooks import service
from relance.notifier.webhooks.schemas import (
    Deliveries,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    Endpoints,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "not in this organization"}}


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
    allowed = rt.settings.allowed_webhook_hosts
    endpoint = await service.create_endpoint(
        s, org.id, body.url, body.events, allowed_hosts=allowed, now=rt.clock.now()
    )
    return EndpointCreated(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        created_at=endpoint.created_at,
        secret=endpoint.secret,
    )


@router.get("/webhook-endpoints")
async def list_endpoints(org: TenantDep, s: SessionDep) -> Endpoints:
    return Endpoints(items=[endpoint_out(row) for row in await service.endpoints_of(s, org.id)])


@router.get("/webhook-endpoints/{endpoint_id}", responses=NOT_FOUND)
async def get_endpoint(endpoint_id: UUID, org: TenantDep, s: SessionDep) -> EndpointOut:
    return endpoint_out(await service.endpoint_of(s, org.id, endpoint_id))


@router.delete(
    "/webhook-endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND
)
async def delete_endpoint(
    endpoint_id: UUID, org: TenantDep, s: SessionDep, rt: RuntimeDep
) -> Response:
    """Stop sending to it; what was still waiting is dropped, the log is kept."""
    await service.delete_endpoint(s, org.id, endpoint_id, rt.clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", responses=NOT_FOUND)
async def list_deliveries(
    endpoint_id: UUID,
    org: TenantDep,
    s: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Deliveries:
    """The endpoint's delivery log, newest first."""
    rows = await service.webhook_deliveries_of(s, org.id, endpoint_id, limit)
    return Deliveries(items=[delivery_out(r) for r in rows])


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: {"description": "the delivery is still being attempted"}},
)
async def replay(delivery_id: str, org: TenantDep, s: SessionDep, rt: RuntimeDep) -> DeliveryOut:
    """Send a delivery again now (after it failed for a day, or to resend one)."""
    return delivery_out(
        await service.replay_webhook_delivery(s, org.id, delivery_id, rt.clock.now())
    )
