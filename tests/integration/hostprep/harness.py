"""Test harness: the hostprep job handler on a real bus, sandbox hosts, the kube emulator and the BYOH simulators."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nats.js.kv import KeyValue

from sandbox.capi.identity import BYOH_ACCOUNT, BYOH_NAMESPACE, service_account_client
from sandbox.hosts import SandboxHostPool
from services.hostprep.app import build_deps
from services.hostprep.claims import HostClaims
from services.hostprep.deps import Deps
from services.hostprep.handlers import JobHandler
from services.hostprep.settings import HostprepSettings
from shared.bus import Bus, Consumer
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.objects import HOST_ID_LABEL
from shared.payloads import HostprepDone, HostprepFailed, HostprepJob, HostProgress, MessageFailed
from shared.subjects import ALL_HOSTPREP_EVENTS, BUCKET_HOSTPREP_CLAIMS, HOSTPREP_JOBS_CONSUMER, hostprep_job

INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
K8S_VERSION = "v1.30.2"


def host_ids(pool: SandboxHostPool, ids: Sequence[str] | None = None) -> tuple[str, ...]:
    return tuple(ids) if ids else tuple(h.host_id for h in pool.hosts)


def write_inventory(pool: SandboxHostPool, path: Path, **per_host: dict[str, Any]) -> Path:
    """The pool's inventory (``input.json`` shape); ``per_host[host_id]`` overrides fields of one host."""
    hosts = []
    for entry in pool.inventory_hosts():
        merged = {**entry, **per_host.get(entry["host_id"], {})}
        hosts.append({k: v for k, v in merged.items() if v is not None})
    path.write_text(json.dumps({"k8s_version": K8S_VERSION, "hosts": hosts, "clusters": []}, indent=1))
    return path


def settings_for(pool: SandboxHostPool, kubeconfig: Path, inventory: Path, **overrides: Any) -> HostprepSettings:
    fields: dict[str, Any] = {
        "inventory_file": inventory,
        "ssh_key_dir": pool.client_key_path.parent,
        "known_hosts_file": pool.known_hosts_path,
        "kubeconfig": kubeconfig,
        "agent_binary_file": pool.agent_binary_path,
        "connect_timeout": 5.0,
        "command_timeout": 20.0,
        "registration_timeout": 20.0,
        "bootstrap_kubeconfig_timeout": 20.0,
        "job_timeout": 100.0,
        "retry_initial_delay": 0.2,
        "retry_max_delay": 1.0,
        "max_step_attempts": 3,
        "jobs_ack_wait": 10.0,
        # The recipe's tests read every step transition; the default folds the quick ones (test_progress.py).
        "progress_settle": 0.0,
    }
    fields.update(overrides)
    return HostprepSettings(**fields)


class Harness:
    """The jobs consumer bound on ``bus`` plus everything published on ``hostprep.events.>``."""

    def __init__(self, bus: Bus, deps: Deps, client: KubeClient | None, consumer: Consumer) -> None:
        self.bus = bus
        self.deps = deps
        self.client = client
        self.consumer = consumer
        self.events: list[Envelope] = []
        self._arrived = asyncio.Event()
        self._sub: Any = None

    @classmethod
    async def start(
        cls,
        bus: Bus,
        settings: HostprepSettings,
        *,
        claims: Callable[[KeyValue], HostClaims] = HostClaims,
        max_deliver: int = HOSTPREP_JOBS_CONSUMER.max_deliver,
    ) -> Harness:
        deps, client = await build_deps(settings)
        spec = dataclasses.replace(HOSTPREP_JOBS_CONSUMER, ack_wait=settings.jobs_ack_wait, max_deliver=max_deliver)
        handler = JobHandler(deps, claims(await bus.kv(BUCKET_HOSTPREP_CLAIMS)), max_deliver=max_deliver)
        consumer = bus.consumer(spec, dispatch(handler.on_job))
        harness = cls(bus, deps, client, consumer)
        harness._sub = await bus.nc.subscribe(ALL_HOSTPREP_EVENTS, cb=harness._on_event)
        await consumer.start()
        return harness

    async def _on_event(self, msg: Any) -> None:
        self.events.append(decode(msg.data))
        self._arrived.set()

    async def close(self) -> None:
        await self.consumer.stop(5.0)
        if self._sub is not None:
            await self._sub.unsubscribe()
        if self.deps.byohosts is not None:
            await self.deps.byohosts.close()
        if self.deps.bootstrap is not None:
            await self.deps.bootstrap.close()
        if self.client is not None:
            await self.client.close()

    @staticmethod
    def job(
        pool: SandboxHostPool,
        *,
        pr_id: str | None = None,
        ids: Sequence[str] | None = None,
        action: str = "prepare",
        namespace: str = "default",
        purge: bool = False,
        k8s_version: str = K8S_VERSION,
    ) -> HostprepJob:
        return HostprepJob(
            pr_id=pr_id or str(uuid.uuid4()),
            action=action,  # type: ignore[arg-type]
            cluster="c1",
            namespace=namespace,
            k8s_version=k8s_version,
            hosts=host_ids(pool, ids),
            purge_packages=purge,
        )

    async def submit(self, job: HostprepJob) -> Envelope:
        return await self.bus.emit(hostprep_job(job.pr_id), job, correlation_id="fpr-test")

    def results(self, pr_id: str) -> list[HostprepDone | HostprepFailed]:
        return [
            e.payload
            for e in self.events
            if isinstance(e.payload, HostprepDone | HostprepFailed) and e.payload.pr_id == pr_id
        ]

    def progress(self, pr_id: str, host_id: str | None = None, *, after: int = 0) -> list[HostProgress]:
        return [
            e.payload
            for e in self.events[after:]
            if isinstance(e.payload, HostProgress)
            and e.payload.pr_id == pr_id
            and (host_id is None or e.payload.host_id == host_id)
        ]

    async def result(self, pr_id: str, timeout: float = 100.0) -> HostprepDone | HostprepFailed:
        async with asyncio.timeout(timeout):
            while True:
                found = self.results(pr_id)
                if found:
                    return found[0]
                self._arrived.clear()
                await self._arrived.wait()

    async def failure(self, pr_id: str, timeout: float = 30.0) -> MessageFailed:
        """The ``message.failed`` the jobs consumer published for a job of ``pr_id`` it refused."""
        async with asyncio.timeout(timeout):
            while True:
                found = [
                    e.payload
                    for e in self.events
                    if isinstance(e.payload, MessageFailed) and e.payload.subject == hostprep_job(pr_id)
                ]
                if found:
                    return found[0]
                self._arrived.clear()
                await self._arrived.wait()

    async def run(self, job: HostprepJob, timeout: float = 100.0) -> HostprepDone | HostprepFailed:
        await self.submit(job)
        return await self.result(job.pr_id, timeout)


async def byohosts_by_host_id(client: KubeClient, namespace: str = "default") -> dict[str, dict[str, Any]]:
    items, _ = await client.list(INFRA, "ByoHost", namespace, label_selector=HOST_ID_LABEL)
    return {item["metadata"]["labels"][HOST_ID_LABEL]: item for item in items}


async def claim(client: KubeClient, name: str) -> None:
    """Set ``status.machineRef`` of the ByoHost ``name``, as the ByoMachine controller does when a Machine takes
    the host, with BYOH's controller-manager identity: the ByoHost webhook admits updates only from it and
    from the host's own agent, never from an admin."""
    ref = {"apiVersion": INFRA, "kind": "ByoMachine", "name": "c1-md-0-x7k2p", "namespace": "default"}
    async with await service_account_client(client, BYOH_NAMESPACE, BYOH_ACCOUNT) as byoh:
        await byoh.patch(INFRA, "ByoHost", name, "default", {"status": {"machineRef": ref}}, subresource="status")
