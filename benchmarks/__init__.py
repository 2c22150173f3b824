"""Relance benchmarks, run by ``make bench`` (``python -m benchmarks``).

They measure and print figures; they never assert on timings (the machines they run on are
shared and noisy). BENCHMARKS.md at the repository root records the figures and targets.

- :mod:`benchmarks.outbox_relay`: outbox relay throughput against a bare aiokafka producer.
- :mod:`benchmarks.dev_stack`: ``make dev`` start time and the services' idle memory.
"""
