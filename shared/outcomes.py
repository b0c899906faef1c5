"""What the outcome of a handled message leaves behind: its log line, its metrics, its fault count.

``shared.bus`` decides each outcome (ack, nak, term, cancelled); this module records it as the
one canonical ``message_handled`` line per message (debug for success, since a service handles
hundreds of messages per cluster and the transitions they cause are logged at info by the services;
info for planned retries, warning for other failures, error with the traceback for an unexpected
fault) and in the Prometheus metrics, and counts unexpected faults per message so that the bus can bound their
retries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import structlog

from shared.errors import ServiceError, UnexpectedError, classify, root_cause
from shared.messages import Envelope
from shared.metrics import BusMetrics

# The line is the bus's: operators find it under the bus's logger, whichever module writes it.
log = structlog.get_logger("shared.bus")


class FaultCounts:
    """Unexpected faults per message (by stream sequence) in this process, for bounding retries.

    Bounded in size: an entry whose message went to another replica and never came back is
    eventually forgotten (``max_deliver`` still bounds such a message overall).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._counts: OrderedDict[int, int] = OrderedDict()
        self._limit = limit

    def add(self, seq: int) -> int:
        n = self._counts.pop(seq, 0) + 1
        self._counts[seq] = n
        while len(self._counts) > self._limit:
            self._counts.popitem(last=False)
        return n

    def forget(self, seq: int) -> None:
        self._counts.pop(seq, None)


def log_outcome(
    metrics: BusMetrics,
    consumer: str,
    subject: str,
    env: Envelope | None,
    outcome: str,
    deliveries: int,
    started: float,
    error: BaseException | None,
) -> None:
    """The canonical line and metrics of one handled message (``started``: ``time.perf_counter()``)."""
    elapsed = time.perf_counter() - started
    metrics.observe(consumer, outcome, elapsed)
    fields: dict[str, Any] = {
        "consumer": consumer,
        "subject": subject,
        "outcome": outcome,
        "deliveries": deliveries,
        "duration_ms": round(elapsed * 1000, 2),
    }
    if env is not None:
        fields["type"] = env.type
    if error is None:
        log.debug("message_handled", **fields)
        return
    serr = classify(error)
    fields.update(reason=serr.reason, error=serr.message)
    if isinstance(serr, UnexpectedError):
        # Nobody recognised this fault: a bug or an unknown failure mode, never a routine
        # retry. The traceback (with the chained original) is what someone will need.
        fields.update(exception=type(root_cause(error)).__name__)
        log.error("message_handled", exc_info=error, **fields)
    elif outcome == "nak" and isinstance(error, ServiceError):
        # A planned retry (a deadline not yet due, a dependency not ready) is routine.
        log.info("message_handled", **fields)
    else:
        log.warning("message_handled", **fields)
