"""What the deployment files are checked against: the services' own specs, from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from relance.common.service import ServiceSpec
from relance.invoice_api.app import SPEC as INVOICE_API
from relance.notifier.app import SPEC as NOTIFIER
from relance.payment_matcher.app import SPEC as PAYMENT_MATCHER
from relance.scheduler.app import SPEC as SCHEDULER

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def specs() -> dict[str, ServiceSpec]:
    """The four services by name, as their composition roots declare them."""
    return {spec.name: spec for spec in (INVOICE_API, SCHEDULER, NOTIFIER, PAYMENT_MATCHER)}
