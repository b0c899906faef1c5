"""From watch events to published statuses: the watches, the dirty set, the probe schedule, the publish loop.

Watches feed the :class:`ObjectCache`; each change marks the cluster/host statuses it
touches dirty. The publish loop waits until every watch has listed once (a partial
cache would publish false "not ready" states), reads back what was last published,
publishes the current state of everything once, then recomputes and publishes only
dirty keys, coalescing whatever piled up while the previous batch was in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from services.status_watcher.cache import BYOHOST, CLUSTER, CRS, KCP, MACHINE, MD, SECRET, ObjectCache, StatusKey
from services.status_watcher.domain import (
    ProbeResult,
    expected_nodes,
    needs_probe,
    summarize_byohost,
    summarize_cluster,
)
from services.status_watcher.publisher import Published, Summary, load_history, plan, publish, subject_of
from services.status_watcher.watch import Backoff, ResourceWatch, WatchTarget, stop_if_cancelled
from shared.bus import Bus
from shared.errors import PermanentError, classify
from shared.kube import KubeClient
from shared.messages import Envelope
from shared.objects import CLUSTER_NAME_LABEL

log = structlog.get_logger(__name__)

Probe = Callable[[str, str, frozenset[str]], Awaitable[ProbeResult]]
ClusterKey = tuple[str, str]
INFRA_VERSION = "infrastructure.cluster.x-k8s.io/v1beta1"
_GROUPS = {
    CLUSTER: "cluster.x-k8s.io",
    MD: "cluster.x-k8s.io",
    MACHINE: "cluster.x-k8s.io",
    KCP: "controlplane.cluster.x-k8s.io",
    CRS: "addons.cluster.x-k8s.io",
}


async def resolve_targets(client: KubeClient, namespaces: tuple[str, ...], capi_version: str) -> list[WatchTarget]:
    """One watch target per (kind, namespace); ``auto`` prefers v1beta2 per group where it is served."""
    targets: list[WatchTarget] = []
    scopes: tuple[str | None, ...] = namespaces or (None,)
    for kind, group in _GROUPS.items():
        versions = ("v1beta2", "v1beta1") if capi_version == "auto" else (capi_version,)
        api_version = ""
        for version in versions:
            try:
                await client.resource(f"{group}/{version}", kind)
            except PermanentError as exc:
                if exc.reason != "UnknownKind":
                    raise
                continue
            api_version = f"{group}/{version}"
            break
        if not api_version:
            raise PermanentError(f"the server serves {kind} in none of {versions}", reason="UnknownKind")
        targets += [WatchTarget(api_version, kind, ns) for ns in scopes]
    targets += [WatchTarget(INFRA_VERSION, BYOHOST, ns) for ns in scopes]
    # Kubeconfig Secrets carry the cluster-name label; watching them beats a get per cluster. CAPI puts that
    # label on every Secret of a cluster (CA, etcd and service-account keys too): watch their metadata only.
    targets += [WatchTarget("v1", SECRET, ns, label_selector=CLUSTER_NAME_LABEL, metadata_only=True) for ns in scopes]
    return targets


class StatusPipeline:
    """The watch sink and the publish loop (one per process)."""

    def __init__(
        self,
        bus: Bus,
        *,
        source: str,
        namespaces: tuple[str, ...] = (),
        probe: Probe | None = None,
        probe_interval: float = 15.0,
        probe_concurrency: int = 8,
        backoff: Backoff | None = None,
    ) -> None:
        self.bus = bus
        self.source = source
        self.namespaces = namespaces
        self.cache = ObjectCache()
        self.backoff = backoff or Backoff()
        self._probe = probe
        self._probe_interval = probe_interval
        self._probe_slots = asyncio.Semaphore(probe_concurrency)
        self._probe_results: dict[ClusterKey, tuple[frozenset[str], ProbeResult]] = {}
        self._probe_tasks: dict[ClusterKey, asyncio.Task[None]] = {}
        self._timers: dict[ClusterKey, asyncio.TimerHandle] = {}
        self._dirty: set[StatusKey] = set()
        self._wake = asyncio.Event()
        self.last: dict[StatusKey, Published] = {}
        #: Set after the first full publish (every known status once).
        self.started = asyncio.Event()
        self.published = 0

    # -- WatchSink ----------------------------------------------------------------------------

    def on_event(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            self._mark(self.cache.delete(kind, obj))
        elif event_type in ("ADDED", "MODIFIED"):
            self._mark(self.cache.upsert(kind, obj))

    def on_list(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None:
        self._mark(self.cache.replace(kind, namespace, items))

    def _mark(self, keys: set[StatusKey]) -> None:
        if keys:
            self._dirty |= keys
            self._wake.set()

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, synced: Awaitable[None]) -> None:
        try:
            await synced
            self.last = await self._retry(lambda: load_history(self.bus, self.namespaces))
            everything = self.cache.status_keys() | set(self.last)
            self._dirty -= everything
            await self._retry(lambda: self._flush(everything, republish=True))
            self.started.set()
            log.info("initial_status_published", statuses=len(everything), published=self.published)
            while True:
                stop_if_cancelled()
                await self._wake.wait()
                self._wake.clear()
                keys, self._dirty = self._dirty, set()
                try:
                    await self._flush(keys)
                    self.backoff.reset()
                except Exception as exc:
                    stop_if_cancelled(exc)
                    self._mark(keys)
                    await self._failed("publish_failed", exc)
        finally:
            for timer in self._timers.values():
                timer.cancel()
            for task in self._probe_tasks.values():
                task.cancel()
            await asyncio.gather(*self._probe_tasks.values(), return_exceptions=True)

    async def _retry(self, step: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            stop_if_cancelled()
            try:
                result = await step()
            except Exception as exc:
                stop_if_cancelled(exc)
                await self._failed("startup_step_failed", exc)
                continue
            self.backoff.reset()
            return result

    async def _failed(self, event: str, exc: Exception) -> None:
        err = classify(exc)
        delay = self.backoff.next_delay()
        log.warning(event, reason=err.reason, error=err.message, retry_in=round(delay, 2))
        await asyncio.sleep(delay)  # backoff while NATS is unavailable

    async def _flush(self, keys: set[StatusKey], *, republish: bool = False) -> None:
        items: list[tuple[str, Envelope]] = []
        changed: dict[StatusKey, Published] = {}
        for key in sorted(keys):
            summary = self._summarize(key)
            envelopes, last = plan(key, self.last.get(key), summary, source=self.source, republish=republish)
            if envelopes and last is not None:
                subject = subject_of(key)
                items += [(subject, env) for env in envelopes]
                changed[key] = last
        if not items:
            return
        await publish(self.bus, items)
        self.last.update(changed)
        self.published += len(items)
        for subject, env in items:
            log.debug("status_published", subject=subject, type=env.type, message_id=str(env.id))

    def _summarize(self, key: StatusKey) -> Summary:
        if key.kind == "byohost":
            return summarize_byohost(key.namespace, key.name, self.cache.get(BYOHOST, key.namespace, key.name))
        view = self.cache.view(key.namespace, key.name, probe_enabled=self._probe is not None)
        if self._probe is not None and needs_probe(view):
            expected = expected_nodes(view)
            found = self._probe_results.get((key.namespace, key.name))
            if found is not None and found[0] == expected:
                view = replace(view, probe=found[1])
            else:
                self._start_probe(key, expected)
        return summarize_cluster(view)

    # -- the workload probe -----------------------------------------------------------------------

    def _start_probe(self, key: StatusKey, expected: frozenset[str]) -> None:
        ckey = (key.namespace, key.name)
        if ckey in self._probe_tasks or self._probe is None:
            return
        self._probe_tasks[ckey] = asyncio.create_task(self._run_probe(key, expected), name=f"probe:{ckey}")

    async def _run_probe(self, key: StatusKey, expected: frozenset[str]) -> None:
        ckey = (key.namespace, key.name)
        assert self._probe is not None
        try:
            async with self._probe_slots:
                result = await self._probe(key.namespace, key.name, expected)
        finally:
            self._probe_tasks.pop(ckey, None)
        self._probe_results[ckey] = (expected, result)
        self._mark({key})
        if not result.ok:
            old = self._timers.pop(ckey, None)
            if old is not None:
                old.cancel()
            self._timers[ckey] = asyncio.get_running_loop().call_later(self._probe_interval, self._reprobe, key)

    def _reprobe(self, key: StatusKey) -> None:
        self._timers.pop((key.namespace, key.name), None)
        self._probe_results.pop((key.namespace, key.name), None)
        self._mark({key})


class StatusWatcher:
    """Every watch plus the pipeline, run as one background task; ``readiness()`` for ``/readyz``."""

    def __init__(
        self,
        client: KubeClient,
        pipeline: StatusPipeline,
        *,
        capi_version: str = "auto",
        watch_timeout: int = 300,
        backoff: tuple[float, float] = (0.2, 10.0),
    ) -> None:
        self.client = client
        self.pipeline = pipeline
        self.capi_version = capi_version
        self.watch_timeout = watch_timeout
        self._backoff = backoff
        self.watches: list[ResourceWatch] = []

    def _new_backoff(self) -> Backoff:
        return Backoff(initial=self._backoff[0], maximum=self._backoff[1])

    async def run(self) -> None:
        backoff = self._new_backoff()
        while True:
            try:
                targets = await resolve_targets(self.client, self.pipeline.namespaces, self.capi_version)
                break
            except Exception as exc:
                stop_if_cancelled(exc)
                err = classify(exc)
                delay = backoff.next_delay()
                log.warning("watch_targets_unresolved", reason=err.reason, error=err.message, retry_in=round(delay, 2))
                await asyncio.sleep(delay)  # the API server or its CRDs are not there yet
        self.watches = [
            ResourceWatch(
                self.client, t, self.pipeline, timeout_seconds=self.watch_timeout, backoff=self._new_backoff()
            )
            for t in targets
        ]
        log.info("watches_starting", targets=[f"{t.api_version}/{t.kind}@{t.namespace or '*'}" for t in targets])

        async def synced() -> None:
            await asyncio.gather(*(w.listed.wait() for w in self.watches))
            log.info("initial_lists_done", watches=len(self.watches))

        async with asyncio.TaskGroup() as group:
            for watch in self.watches:
                group.create_task(watch.run(), name=f"watch:{watch.name}")
            group.create_task(self.pipeline.run(synced()), name="status-publisher")

    def readiness(self) -> tuple[bool, str]:
        listed = sum(1 for w in self.watches if w.listed.is_set())
        ok = bool(self.watches) and listed == len(self.watches) and self.pipeline.started.is_set()
        return ok, f"initial lists {listed}/{len(self.watches)}, first publish {self.pipeline.started.is_set()}"
