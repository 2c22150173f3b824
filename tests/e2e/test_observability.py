"""What an SRE sees of the running system: with the standard OTEL_* variables set, one trace
follows an invoice from the HTTP call that sends it, through the scheduler and the notifier,
to the email and back to invoice-api; and no metric label carries an invoice id or an email.

The spans go to a minimal OTLP/HTTP receiver run by the test (what an OpenTelemetry
Collector's OTLP receiver does with them first: decode the protobuf request and keep them).
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from relance.devstack.stack import SERVICES

from .conftest import DevRun, Organization, eventually

pytestmark = pytest.mark.e2e

UUID_OR_EMAIL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|@", re.I)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


class OtlpReceiver:
    """Accepts OTLP/HTTP protobuf exports on ``/v1/traces`` and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def keep(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans.extend(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                        )
                        for span in scope_spans.spans
                    )

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.stop()


@pytest.fixture
def traced_run(tmp_path: Path, receiver: OtlpReceiver) -> Iterator[DevRun]:
    run = DevRun(
        tmp_path / "relance-data",
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds: export soon, for the test
        },
    )
    yield run
    if run.process.poll() is None:
        run.stop()


def test_one_trace_follows_an_invoice_from_the_send_call_to_the_email(
    traced_run: DevRun, receiver: OtlpReceiver
):
    traced_run.wait_ready()
    with httpx.Client(timeout=10) as client:
        org = Organization(client, traced_run)
        invoice = org.sent_invoice("FA-TRACE-1")

        def send_trace() -> list[ReceivedSpan]:
            spans = receiver.received()
            roots = [
                s
                for s in spans
                if s.name == "POST /v1/invoices/{invoice_id}/send"
                and s.attributes.get("url.path") == f"/v1/invoices/{invoice['id']}/send"
            ]
            return [s for s in spans if roots and s.trace_id == roots[0].trace_id]

        def names(spans: list[ReceivedSpan]) -> set[tuple[str, str]]:
            return {(s.service, s.name) for s in spans}

        wanted = {
            ("relance-invoice-api", "POST /v1/invoices/{invoice_id}/send"),
            ("relance-scheduler", "invoice.sent process"),
            ("relance-notifier", "reminder.due process"),
            ("relance-notifier", "email send"),
            ("relance-invoice-api", "email.sent process"),
        }

        def roots(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
            ids = {s.span_id for s in spans}
            return [s for s in spans if s.parent_span_id not in ids]

        # each service exports on its own schedule: wait for the spans and their parents
        def sent(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
            # an email tried before its invoice reached the notifier has an "awaiting" span
            # too: the one that went is the last
            return [
                s
                for s in spans
                if s.name == "email send" and s.attributes.get("relance.email_outcome") == "sent"
            ]

        trace = eventually(
            send_trace,
            lambda spans: wanted <= names(spans) and len(roots(spans)) == 1 and sent(spans),
        )
        assert wanted <= names(trace), sorted(names(trace))

        # one tree: every span but the call's own has its parent in the trace
        [root] = roots(trace)
        assert root.name == "POST /v1/invoices/{invoice_id}/send"
        assert root.attributes["http.response.status_code"] == 200
        [email] = sent(trace)
        assert email.attributes["relance.reminder_kind"] == "issuance"
        assert email.attributes["relance.invoice_id"] == invoice["id"]

        # a frontend that traces its own calls sees invoice-api's work inside its trace
        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        shown = client.get(
            f"{org.api}/v1/invoices/{invoice['id']}",
            headers={**org.auth, "traceparent": f"00-{caller_trace}-{caller_span}-01"},
        )
        assert shown.status_code == 200
        continued = eventually(
            lambda: [s for s in receiver.received() if s.trace_id == caller_trace],
            lambda spans: any(s.parent_span_id == caller_span for s in spans),
        )
        [read] = [s for s in continued if s.parent_span_id == caller_span]
        assert read.name == "GET /v1/invoices/{invoice_id}"
        assert read.attributes["http.response.status_code"] == 200

        # and what Prometheus scrapes never names an invoice, a customer or an address
        for service in SERVICES:
            port = traced_run.port_base + SERVICES.index(service)
            page = client.get(f"http://127.0.0.1:{port}/metrics").text
            for family in text_string_to_metric_families(page):
                for sample in family.samples:
                    for value in sample.labels.values():
                        assert not UUID_OR_EMAIL.search(value), (service.name, sample)
