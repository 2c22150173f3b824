"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for it; when on,
one trace follows an invoice from the HTTP call, through every event, to the email.

Tracing starts when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``,
comma-separated; ``none`` is off) or when ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, unless ``OTEL_SDK_DISABLED=true``. The SDK
reads the rest itself: ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``, ... Spans go out by
OTLP over HTTP (protobuf), the protocol every collector accepts.

HTTP requests are traced by FastAPI itself (its native OpenTelemetry support, on as soon as
a tracer provider is configured): a server span per request, continuing the caller's
``traceparent`` header, with spans for dependencies, the endpoint and serialization.

The context crosses Kafka as the W3C ``traceparent`` header of each event: an event made
while a span is current carries that span (``Event.new``), and a consumer handles it in a
span whose parent it is. Work done later than the event that caused it (a step fired
days after it was planned, an email sent by the sending loop) keeps that event's
``traceparent`` in its row and resumes the trace from it (:func:`resumed`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXPORTERS = ("otlp", "console")
# the OTEL_* variables an operator sets on the services (deployment files may pass them)
VARIABLES = frozenset(
    {
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
    }
)
_W3C = TraceContextTextMapPropagator()
_provider: Any = None  # the SDK's TracerProvider once configured; None while tracing is off


class TracingSettingsError(ValueError):
    """``OTEL_*`` variables this service cannot honour: refused at start, not ignored."""


def exporters_requested(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for; empty when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if named:
        wanted = [name.strip().lower() for name in named.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in (*EXPORTERS, "none")]
        if unknown:
            raise TracingSettingsError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {unknown[0]!r} "
                f"(known: {', '.join(EXPORTERS)}, none)"
            )
        exporters = [] if "none" in wanted else list(dict.fromkeys(wanted))
    elif environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        exporters = ["otlp"]
    else:
        return []
    if "otlp" in exporters:
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol.strip().lower() != "http/protobuf":
            raise TracingSettingsError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: Relance exports spans over "
                "http/protobuf only (point it at the collector's HTTP port, 4318 by default)"
            )
    return exporters


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Start exporting spans if the environment asks for it; whether it does."""
    environ = os.environ if environ is None else environ
    exporters = exporters_requested(environ)
    if not exporters:
        return False
    # imported only when tracing is on: the SDK and the exporter cost memory and start time
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"relance-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    use_provider(provider)
    trace.set_tracer_provider(provider)
    return True


def use_provider(provider: Any) -> None:
    """Record spans with ``provider`` (``None``: stop tracing). ``configure_tracing`` calls
    it; tests call it with a provider of their own."""
    global _provider
    _provider = provider


def shutdown_tracing() -> None:
    """Send the spans still buffered: called when the service stops."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def enabled() -> bool:
    return _provider is not None


def _tracer() -> trace.Tracer:
    return trace.get_tracer("relance", tracer_provider=_provider)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry with an event; ``None`` when no
    span is recording (tracing off), so that nothing is added to the event."""
    if _provider is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def resumed(
    traceparent: str | None,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span named ``name``, child of ``traceparent`` (a new trace when it is ``None``), current
    while the block runs; nothing at all when tracing is off."""
    if _provider is None:
        with nullcontext():
            yield None
        return
    parent = _W3C.extract({"traceparent": traceparent}) if traceparent else None
    with _tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as span:
        yield span
