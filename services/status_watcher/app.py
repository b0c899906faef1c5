"""Composition root of status_watcher: a Kubernetes client, the watches and the status pipeline.

The watches are not message handlers: they run as one background task (``StatusWatcher.run``),
and ``/readyz`` reports ready once every initial list is done and the current state of every
watched object has been published once.
"""

from __future__ import annotations

from services.status_watcher.pipeline import StatusPipeline, StatusWatcher
from services.status_watcher.probe import WorkloadProbe
from services.status_watcher.settings import StatusWatcherSettings
from services.status_watcher.watch import Backoff
from shared.kube import KubeClient
from shared.runtime import ServiceRuntime, run_service


async def setup(runtime: ServiceRuntime[StatusWatcherSettings]) -> None:
    s = runtime.settings
    client = await KubeClient.from_kubeconfig(s.kubeconfig.expanduser(), context=s.kube_context, timeout=s.kube_timeout)
    runtime.on_close(client.close)
    probe = WorkloadProbe(client, timeout=s.probe_timeout) if s.probe_workload else None
    pipeline = StatusPipeline(
        runtime.bus,
        source=runtime.name,
        namespaces=s.namespaces,
        probe=probe,
        probe_interval=s.probe_interval,
        probe_concurrency=s.probe_concurrency,
        backoff=Backoff(initial=s.backoff_initial, maximum=s.backoff_max),
    )
    watcher = StatusWatcher(
        client,
        pipeline,
        capi_version=s.capi_version,
        watch_timeout=s.watch_timeout,
        backoff=(s.backoff_initial, s.backoff_max),
    )
    runtime.health.add_check("watches", watcher.readiness)
    runtime.background(watcher.run(), "status-watcher")


def main() -> int:
    return run_service("status_watcher", StatusWatcherSettings, setup)
