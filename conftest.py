"""Fixtures on the real embedded PostgreSQL, broker and SMTP catcher, for every suite."""

pytest_plugins = ["relance.devstack.testing"]
