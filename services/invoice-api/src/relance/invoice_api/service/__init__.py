"""The use cases of invoice-api, one module per aggregate. Each changes the state through
the repository and writes the events it causes to the outbox, in the caller's transaction;
they take plain values or the command dataclasses defined next to them, never HTTP bodies."""
