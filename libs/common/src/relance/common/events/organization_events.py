"""Topic ``organization-events``: organizations as invoice-api keeps them, so that every
service knows each tenant's API key (hashed) and rules without calling back."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from relance.common.events.envelope import Payload
from relance.common.events.types import OrganizationSnapshot

TOPIC = "organization-events"


class OrganizationSaved(Payload, event_type="organization.saved", topic=TOPIC):
    """An organization was created or changed: its whole current state."""

    subject_field: ClassVar[str] = "organization_id"

    organization_id: UUID
    organization: OrganizationSnapshot
    api_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
