"""One host's progress events, coalesced: what a watcher needs, at a fraction of the messages.

A host walks through a dozen steps, most of which take milliseconds; publishing every ``running`` and
``done`` (a JetStream publish and its ack each, then a record update in o2ims for each) was the largest
share of the bus traffic of a preparation. Here:

- a routine transition (``running``, ``done``, ``skipped``) waits ``settle`` seconds; a newer one of the
  same host replaces it. So every step that lasts longer than ``settle`` (a package install, a download,
  the wait for the ByoHost) is still seen while it runs, and the quick ones in between are folded into it.
  A host changing steps without pause still publishes its latest transition at least every
  ``MAX_WAIT_FACTOR * settle`` seconds;
- an urgent event goes out at once: ``failed``, ``checking`` (a retry is coming, or another replica holds
  the host) and the host's outcome (its step named after the job's action: ``ready``, or ``done`` for a
  teardown). It replaces a routine transition still waiting: the outcome says more than it;
- a host's events are published one at a time, in the order they were reported; ``close()`` publishes a
  transition still waiting, so a host's last word is never lost.

``settle`` = 0 publishes every transition at once, as reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.kinds import HostStepStatus

log = structlog.get_logger(__name__)

Send = Callable[[str, str, str | None], Awaitable[None]]
#: A host changing steps without pause publishes at least this many ``settle`` periods apart.
MAX_WAIT_FACTOR = 4.0
URGENT: frozenset[HostStepStatus] = frozenset({"failed", "checking", "ready"})


class HostFeed:
    """The progress events of one host of one job, published through ``send`` (see the module docstring)."""

    def __init__(self, send: Send, *, settle: float, outcome_step: str) -> None:
        self._send = send
        self._settle = settle
        #: The step of the host's outcome event (the job's action): always urgent.
        self._outcome_step = outcome_step
        self._lock = asyncio.Lock()
        self._pending: tuple[str, str, str | None] | None = None
        #: Loop time by which the oldest transition not yet published must go out.
        self._latest = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    def urgent(self, step: str, status: str) -> bool:
        return status in URGENT or step == self._outcome_step

    async def report(self, step: str, status: str, detail: str | None) -> None:
        """Publish now (urgent, or ``settle`` = 0: errors reach the caller) or once the host settled."""
        if self._settle <= 0 or self.urgent(step, status):
            self._cancel_timer()
            self._pending = None
            async with self._lock:
                await self._send(step, status, detail)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._pending is None:
            self._latest = now + self._settle * MAX_WAIT_FACTOR
        self._pending = (step, status, detail)
        self._cancel_timer()
        self._timer = loop.call_at(min(now + self._settle, self._latest), self._due)

    async def close(self) -> None:
        """Publish a transition still waiting; the feed publishes nothing afterwards."""
        self._cancel_timer()
        await asyncio.gather(*self._flushing)
        await self._flush()

    def abandon(self) -> None:
        """Drop whatever is waiting (the host's work was cancelled: nothing more is published)."""
        self._cancel_timer()
        self._pending = None
        for task in self._flushing:
            task.cancel()

    def _due(self) -> None:
        # A task (the timer cannot await); flushes take the lock in turn and each sends the latest transition.
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        async with self._lock:
            event, self._pending = self._pending, None
            if event is None:
                return
            try:
                await self._send(*event)
            except Exception as exc:  # progress is informative: losing one event must not fail the host
                log.warning("progress_not_published", step=event[0], status=event[1], error=type(exc).__name__)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
