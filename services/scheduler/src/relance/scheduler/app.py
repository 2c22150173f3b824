"""Composition root of the scheduler: what it reads, what it serves, what it runs. Nothing else."""

from relance.common.events import (
    invoice_events,
    notification_events,
    organization_events,
    payment_events,
)
from relance.common.service import Runtime, ServiceSpec
from relance.common.service import main as run_service
from relance.scheduler.api import router
from relance.scheduler.handlers import HANDLERS
from relance.scheduler.settings import SchedulerSettings
from relance.scheduler.workers import StepFiring


async def fire_steps(runtime: Runtime[SchedulerSettings]) -> None:
    settings = runtime.settings
    if not settings.run_firing:
        return
    await StepFiring(
        runtime.database,
        runtime.clock,
        batch_size=settings.firing_batch_size,
        poll_seconds=settings.firing_poll_seconds,
        claims_in_flight=settings.firing_claims_in_flight,
    ).run()


SPEC = ServiceSpec(
    name="scheduler",
    package="relance.scheduler",
    settings_cls=SchedulerSettings,
    description=(
        "Plans every invoice's reminders by the rules and fires each step at its time, "
        "exactly once."
    ),
    consumes=(
        organization_events.TOPIC,
        invoice_events.TOPIC,
        payment_events.TOPIC,
        notification_events.TOPIC,
    ),
    handlers=HANDLERS,
    routers=(router,),
    workers={"firing": fire_steps},
)


def main() -> int:
    return run_service(SPEC)
