"""The organization a request or an event acts for: every use case takes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from uuid import UUID

from relance.common.clock import Clock, local_today
from relance.common.events import Event, Payload
from relance.common.events.types import OrganizationSnapshot
from relance.invoice_api.repository import AnyRow
from relance.invoice_api.service.snapshots import organization_snapshot

SOURCE = "invoice-api"


@dataclass(frozen=True)
class Tenant:
    """The organization a request acts for, with the clock to read its today."""

    org: AnyRow
    clock: Clock

    @property
    def id(self) -> UUID:
        org_id: UUID = self.org.id
        return org_id

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local_today(self.clock, self.org.timezone)

    def event(self, payload: Payload) -> Event[Payload]:
        return Event.new(payload, source=SOURCE, organization_id=self.id, time=self.now())

    @cached_property
    def snapshot(self) -> OrganizationSnapshot:
        """The organization as events carry it."""
        return organization_snapshot(self.org)
