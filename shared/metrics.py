"""Prometheus metrics of one process: messages by outcome, handler latency and unexpected faults.

``o2_unexpected_faults_total`` counts handler faults that no classifier recognised (likely
bugs); it is zero in a healthy system, so an alert can fire on any increase, e.g.
``increase(o2_unexpected_faults_total[10m]) > 0``.

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
            "o2_handler_seconds", "Handler latency by consumer.", ["consumer"], buckets=_BUCKETS, registry=self.registry
        )

        self.unexpected = Counter(
            "o2_unexpected_faults_total",
            "Handler faults no classifier recognised (likely bugs), by consumer and exception type.",
            ["consumer", "exception"],
            registry=self.registry,
        )

    def observe(self, consumer: str, outcome: str, seconds: float) -> None:
        self.messages.labels(consumer=consumer, outcome=outcome).inc()
        self.latency.labels(consumer=consumer).observe(seconds)

    def unexpected_fault(self, consumer: str, exception: BaseException) -> None:
        self.unexpected.labels(consumer=consumer, exception=type(exception).__name__).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
