"""Prometheus metrics of one process: messages by outcome and handler latency, per consumer.

Each process owns a registry (no module-level globals), so tests can run several buses in one
interpreter and ``/metrics`` shows only this process's figures.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class BusMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            "o2_messages_total",
            "Messages handled, by consumer and outcome (ack, nak, term, cancelled).",
            ["consumer", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "o2_handler_seconds",
            "Handler latency by consumer.",
            ["consumer"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, consumer: str, outcome: str, seconds: float) -> None:
        self.messages.labels(consumer=consumer, outcome=outcome).inc()
        self.latency.labels(consumer=consumer).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
