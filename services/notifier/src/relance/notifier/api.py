"""What every HTTP route of the notifier shares: the caller's organization, from its API
key. The routes are in ``email/api.py`` (the emails' wording) and ``webhooks/api.py``
(partner endpoints and their deliveries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from relance.common.deps import SessionDep
from relance.common.tenants import AuthorizationHeader, Tenant, tenant_by_key


async def tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(tenant)]
