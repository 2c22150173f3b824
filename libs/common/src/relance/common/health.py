"""``/healthz``, ``/readyz`` and ``/metrics``, and the middleware that counts and tags requests."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relance.common.events.asyncapi import asyncapi_document
from relance.common.logging import bind_context, get_logger
from relance.common.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger(__name__)

Check = Callable[[], Awaitable[Any]]


class NotReady(Exception):
    """What a readiness check raises when its part works but is not ready yet; ``/readyz``
    shows the reason."""


CHECK_TIMEOUT_SECONDS = 2.0


def platform_router(readiness_checks: Mapping[str, Check]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive (no dependency is checked)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary=(
            "The service's database and broker answer, and its consumer has its partitions "
            "and has applied the organization events"
        ),
        responses={503: {"description": "a dependency does not answer"}},
    )
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(_run(check) for check in readiness_checks.values()))
        checks = dict(zip(readiness_checks, results, strict=True))
        ready = all(result == "ok" for result in results)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/asyncapi.json", summary="AsyncAPI 3 document of every topic and event")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document()

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except NotReady as exc:
        return f"not ready: {exc}"
    except Exception as exc:
        return f"error: {exc!r}"
    return "ok"


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-Id``, kept if the client sent one), logs it
    in every line written while it is handled, and counts it by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or str(uuid.uuid4())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with bind_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                elapsed = time.perf_counter() - started
                _requests(scope["method"], template, status).inc()
                _latency(scope["method"], template).observe(elapsed)
                if status >= 500:
                    log.error(
                        "request failed", method=scope["method"], path=scope["path"], status=status
                    )


# The metrics of each label set, looked up once: prometheus_client's labels() checks and
# converts its arguments and takes a lock on every call. Routes, methods and statuses are few.
@functools.lru_cache(maxsize=4096)
def _requests(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _latency(method: str, route: str) -> Any:
    return HTTP_LATENCY.labels(method, route)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")[:128]
            return decoded
    return None
