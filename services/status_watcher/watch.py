"""List + watch of one kind in one namespace (or all), through ``shared.kube.KubeClient``, into a sink.

The loop is the informer pattern: list, then watch from the list's resourceVersion;
when a stream ends or breaks, watch again from the last resourceVersion seen (events
or bookmarks), so nothing between is lost; on ``410 Gone`` re-list and hand the sink
the whole fresh list, which applies only the real differences. Every error waits
according to the one :class:`Backoff` policy, which resets once a list or watch works.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from shared.errors import ServiceError, classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import meta

log = structlog.get_logger(__name__)


@dataclass
class Backoff:
    """Exponential backoff with full jitter, capped; ``reset()`` after a success."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    jitter: bool = True
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling) if self.jitter else ceiling

    def reset(self) -> None:
        self.attempts = 0


def stop_if_cancelled(exc: BaseException | None = None) -> None:
    """Raise again a cancellation that a library swallowed or turned into an ordinary exception.

    (Python 3.11's ``asyncio.wait_for`` can drop a cancel that races with completion;
    a loop that did not check would then run forever in a task that was told to stop.)
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class WatchSink(Protocol):
    """Where a watch delivers: one object event, or a fresh list replacing what was known."""

    def on_event(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None: ...

    def on_list(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class WatchTarget:
    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str | None = None
    #: Read names and labels only (``PartialObjectMetadata``): for Secrets, whose data we never hold.
    metadata_only: bool = False


Sleep = Callable[[float], Awaitable[None]]


class ResourceWatch:
    """Keeps one (kind, namespace) current in the sink until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        target: WatchTarget,
        sink: WatchSink,
        *,
        timeout_seconds: int = 300,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.target = target
        self.sink = sink
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        #: Set once the first list was handed to the sink.
        self.listed = asyncio.Event()
        self.resource_version = ""
        self.relists = 0
        self.resumes = 0

    @property
    def name(self) -> str:
        return f"{self.target.kind}/{self.target.namespace or '*'}"

    async def run(self) -> None:
        need_list = True
        while True:
            stop_if_cancelled()
            try:
                if need_list:
                    await self._list()
                    need_list = False
                self.resumes += 1
                await self._watch()
            except WatchExpired:
                # The server no longer has our resourceVersion: only a fresh list is truthful now.
                log.info("watch_expired", watch=self.name, resource_version=self.resource_version)
                need_list = True
                self.relists += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled(exc)
                err = classify(exc)
                delay = self.backoff.next_delay()
                known = isinstance(exc, ServiceError)
                # An unclassified exception is a bug or an unknown fault: keep its traceback.
                (log.warning if known else log.error)(
                    "watch_failed",
                    watch=self.name,
                    reason=err.reason,
                    error=err.message,
                    retry_in=round(delay, 2),
                    relist=need_list,
                    exc_info=not known,
                )
                await self._sleep(delay)

    async def _list(self) -> None:
        t = self.target
        items, rv = await self.client.list(
            t.api_version, t.kind, t.namespace, label_selector=t.label_selector, metadata_only=t.metadata_only
        )
        self.sink.on_list(t.kind, t.namespace, items)
        self.resource_version = rv
        self.backoff.reset()
        self.listed.set()

    async def _watch(self) -> None:
        t = self.target
        stream = self.client.watch(
            t.api_version,
            t.kind,
            t.namespace,
            resource_version=self.resource_version,
            label_selector=t.label_selector,
            timeout_seconds=self.timeout_seconds,
            bookmarks=True,
            metadata_only=t.metadata_only,
        )
        async for event in stream:
            rv = meta(event.object).get("resourceVersion")
            if event.type != "BOOKMARK":
                self.sink.on_event(t.kind, event.type, event.object)
            if rv:
                self.resource_version = str(rv)
            self.backoff.reset()
