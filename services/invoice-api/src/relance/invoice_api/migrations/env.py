"""Alembic environment of the invoice-api's database."""

from relance.common.migrations import run_in_alembic_env
from relance.common.tables import platform_metadata
from relance.invoice_api.tables import metadata

run_in_alembic_env(platform_metadata, metadata)
