"""The payment-matcher's use cases: import bank transactions and match their credits, and a
person's confirmation or rejection of a suggestion. Each runs in one transaction that writes
its state and its events (to the outbox) together, under a per-organization lock, so that
every import matches against the balances the previous one left and nothing pays twice.

The rules themselves are ``matching`` (pure); this package loads the organization's open
book, applies the rules' outcome to the tables and says it with events.

By aggregate: ``importing`` (bank transactions in, and the credits left waiting matched
again), ``invoices`` (the copy of invoice-api's open invoices and payers, from its events),
``decisions`` (a person's confirmation or rejection of a match), ``reading`` (what the
routes show), ``metrics`` (counted on commit).
"""

from relance.payment_matcher.service.decisions import AlreadyDecided, confirm_match, reject_match
from relance.payment_matcher.service.importing import (
    ImportResult,
    import_transactions,
    waiting_keys,
)
from relance.payment_matcher.service.invoices import (
    keep_invoice,
    take_reported_payment,
)
from relance.payment_matcher.service.reading import (
    MatchView,
    TransactionView,
    get_match,
    get_transaction,
    list_matches,
    list_transactions,
)

__all__ = [
    "AlreadyDecided",
    "ImportResult",
    "MatchView",
    "TransactionView",
    "confirm_match",
    "get_match",
    "get_transaction",
    "import_transactions",
    "keep_invoice",
    "list_matches",
    "list_transactions",
    "reject_match",
    "take_reported_payment",
    "waiting_keys",
]
