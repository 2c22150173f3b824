"""Composition root of the payment-matcher: what it reads, what it serves. Nothing else."""

from relance.common.events import invoice_events
from relance.common.service import ServiceSpec
from relance.common.service import main as run_service
from relance.payment_matcher.settings import PaymentMatcherSettings

SPEC = ServiceSpec(
    name="payment-matcher",
    package="relance.payment_matcher",
    settings_cls=PaymentMatcherSettings,
    description="Imports bank transactions and matches them to open invoices.",
    consumes=(invoice_events.TOPIC,),
)


def main() -> int:
    return run_service(SPEC)
