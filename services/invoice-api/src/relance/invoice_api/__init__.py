"""relance-invoice-api: HTTP API for frontends and partners: organizations, customers, invoices,
payments, and the read model of reminders and activity."""
