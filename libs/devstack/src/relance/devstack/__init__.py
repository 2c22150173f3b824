"""The embedded stack: real PostgreSQL, a real Kafka-protocol broker and an SMTP catcher,
started from Python packages for ``make dev`` and for the tests. Never used in production."""
