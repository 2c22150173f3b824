"""Prometheus metrics shared by the four services. No invoice id or email in any label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double the output for no use to operators.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "relance_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "relance_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)
EVENTS_PRODUCED = Counter(
    "relance_events_produced_total", "Events published to Kafka by the outbox relay", ["type"]
)
EVENTS_CONSUMED = Counter(
    "relance_events_consumed_total",
    "Events read from Kafka, by outcome (applied, duplicate, ignored, dead_lettered)",
    ["type", "outcome"],
)
OUTBOX_BACKLOG = Gauge("relance_outbox_backlog", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "relance_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row"
)
CONSUMER_LAG = Gauge(
    "relance_consumer_lag_messages",
    "Messages behind the end of each partition",
    ["topic", "partition"],
)
