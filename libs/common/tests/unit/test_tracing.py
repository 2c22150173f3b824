"""Tracing is off unless the standard OTEL_* variables turn it on, and a setting the service
cannot honour is refused at start with the variable named, never silently ignored."""

from __future__ import annotations

import pytest

from relance.common.tracing import TracingSettingsError, configure_tracing, exporters_requested

ENDPOINT = "http://otel-collector:4318"


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "x"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "Console, otlp,console"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "console"}, []),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ["otlp"],
        ),
        # the protocol matters only to the OTLP exporter
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ["console"]),
    ],
)
def test_which_exporters_the_environment_asks_for(environ, exporters):
    assert exporters_requested(environ) == exporters


def test_an_unknown_exporter_is_refused_with_its_name():
    with pytest.raises(TracingSettingsError, match=r"OTEL_TRACES_EXPORTER.*'zipkin'"):
        exporters_requested({"OTEL_TRACES_EXPORTER": "otlp,zipkin"})


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
)
def test_otlp_over_grpc_is_refused_saying_to_use_the_http_port(variable):
    with pytest.raises(TracingSettingsError, match=r"http/protobuf only.*4318"):
        exporters_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, variable: "grpc"})


def test_without_otel_variables_nothing_is_configured():
    assert configure_tracing("scheduler", {}) is False
