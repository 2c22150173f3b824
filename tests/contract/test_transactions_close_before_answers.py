"""Every route of every service that works in a database transaction of its request closes
it before FastAPI sends the answer: a dependency left at FastAPI's default scope would commit
only after the 2xx had gone out."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from relance.common.service import ServiceSpec
from relance.invoice_api.app import SPEC as INVOICE_API
from relance.notifier.app import SPEC as NOTIFIER
from relance.payment_matcher.app import SPEC as PAYMENT_MATCHER
from relance.scheduler.app import SPEC as SCHEDULER


def yielding_dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        if inspect.isasyncgenfunction(sub.call) or inspect.isgeneratorfunction(sub.call):
            yield sub
        yield from yielding_dependencies(sub)


@pytest.mark.parametrize(
    "spec", [INVOICE_API, SCHEDULER, NOTIFIER, PAYMENT_MATCHER], ids=lambda spec: spec.name
)
def test_no_route_commits_after_its_answer(spec: ServiceSpec):
    routes = [r for router in spec.routers for r in router.routes if isinstance(r, APIRoute)]
    late = [
        f"{sorted(route.methods or ())} {route.path}: {getattr(dep.call, '__name__', dep.call)}"
        for route in routes
        for dep in yielding_dependencies(route.dependant)
        if dep.scope != "function"
    ]
    assert routes
    assert late == []
