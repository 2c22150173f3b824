"""relance-payment-matcher: Imports bank transactions and matches them to open invoices."""
