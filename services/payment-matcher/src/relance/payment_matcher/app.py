"""Composition root of the payment-matcher: what it reads, what it serves. Nothing else."""

from relance.common.events import invoice_events, organization_events
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.payment_matcher.api import router
from relance.payment_matcher.handlers import HANDLERS
from relance.payment_matcher.settings import PaymentMatcherSettings

SPEC = ServiceSpec(
    name="payment-matcher",
    package="relance.payment_matcher",
    settings_cls=PaymentMatcherSettings,
    description=(
        "Imports bank transactions and statements, matches each credit to the open invoices "
        "it pays, and asks a person when it is not sure."
    ),
    consumes=(organization_events.TOPIC, invoice_events.TOPIC),
    handlers=HANDLERS,
    routers=(router,),
)


def main() -> int:
    return run_service(SPEC)
