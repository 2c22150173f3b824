"""Alembic environment of the notifier's database."""

from relance.common.migrations import run_in_alembic_env
from relance.common.tables import platform_metadata
from relance.common.tenants import tenants_metadata
from relance.notifier.tables import metadata

run_in_alembic_env(platform_metadata, tenants_metadata, metadata)
