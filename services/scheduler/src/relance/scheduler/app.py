"""Composition root of the scheduler: what it reads, what it serves. Nothing else."""

from relance.common.events import invoice_events, payment_events
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.scheduler.settings import SchedulerSettings

SPEC = ServiceSpec(
    name="scheduler",
    package="relance.scheduler",
    settings_cls=SchedulerSettings,
    description=(
        "Plans every invoice's reminders by the rules and fires each step at its time, "
        "exactly once."
    ),
    consumes=(invoice_events.TOPIC, payment_events.TOPIC),
)


def main() -> int:
    return run_service(SPEC)
