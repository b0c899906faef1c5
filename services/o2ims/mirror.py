"""Optional mirror of the ``pr`` bucket into ``ProvisioningRequest`` CRs, for ``kubectl get``.

A KV watch on the bucket (which first replays the latest value of every key, so a restart
converges) feeds a writer that server-side-applies each PR's CR (spec) and its ``/status``;
a tombstone or a purged record deletes the CR. Only the latest value per PR is written, so a
slow API server costs staleness, never a backlog; failed writes are retried. The mirror only
reflects the bus: the state machine never reads these CRs.

A PR's record is written many times while it is prepared (every host's every step), and most of
those writes change nothing a CR shows. So the writer gathers changes for ``interval`` seconds
before writing, and skips the spec or the status when it is what it last wrote for that PR (a
digest per PR, forgotten with the CR or when a write fails, so a retry writes both in full).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any

import structlog

from services.o2ims.record import PrRecord
from services.o2ims.settings import O2imsSettings
from shared.errors import PermanentError, ServiceError
from shared.kube import KubeClient
from shared.kube_config import connect
from shared.objects import PR_ID_LABEL, timestamp
from shared.runtime import ServiceRuntime
from shared.store import RecordStore

log = structlog.get_logger(__name__)

API_VERSION = "o2ims.provisioning.oran.org/v1alpha1"
KIND = "ProvisioningRequest"
RETRY_DELAY = 2.0
#: Seconds the writer gathers record changes before writing them (the CRs' staleness, at most).
INTERVAL = 1.0


def _hosts(rec: PrRecord, role: str) -> list[dict[str, Any]]:
    spec = rec.spec
    if spec is None:
        return []
    hosts = spec.control_plane if role == "control-plane" else spec.workers
    return [{"hostId": h.host_id, "hostName": h.host_name, "hostIp": h.host_ip} for h in hosts]


def cr_object(rec: PrRecord) -> dict[str, Any]:
    """The CR with its spec: what was requested (template and parameters)."""
    params: dict[str, Any] = {}
    if rec.spec is not None:
        s = rec.spec
        params = {
            "clusterName": s.name,
            "namespace": s.namespace,
            "k8sVersion": s.k8s_version,
            "controlPlaneEndpoint": s.endpoint,
            "podCidr": s.pod_cidr,
            "serviceCidr": s.service_cidr,
            "hosts": {"masters": _hosts(rec, "control-plane"), "workers": _hosts(rec, "worker")},
        }
        if s.cni:
            params["cni"] = s.cni
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": rec.pr_id, "labels": {PR_ID_LABEL: rec.pr_id}},
        "spec": {
            "name": rec.cluster or rec.pr_id,
            "description": f"cluster {rec.cluster} for FOCOM request {rec.fpr}",
            "templateName": rec.template_name,
            "templateVersion": rec.template_version,
            "templateParameters": params,
        },
    }


def cr_status(rec: PrRecord) -> dict[str, Any]:
    """The CR's status: what the bus knows about the PR."""
    provisioning: dict[str, Any] = {
        "provisioningState": rec.state,
        "provisioningUpdateTime": timestamp(rec.updated_at),
        "transitions": rec.seq,
    }
    for key, value in (
        ("provisioningStage", rec.stage),
        ("provisioningReason", rec.reason),
        ("provisioningMessage", rec.message),
    ):
        if value:
            provisioning[key] = value
    if rec.node_cluster_id:
        provisioning["provisionedResources"] = {
            "nodeClusterId": rec.node_cluster_id,
            "infrastructureResourceIds": [
                {"hostId": h, "resourceId": st.resource_id}
                for h, st in sorted(rec.hosts.items())
                if st.resource_id and not st.released
            ],
        }
    if rec.deadline is not None:
        provisioning["stageDeadline"] = timestamp(rec.deadline)
    hosts = []
    for host_id, st in sorted(rec.hosts.items()):
        entry: dict[str, Any] = {"hostId": host_id, "role": st.role, "status": st.status, "released": st.released}
        if st.step:
            entry["step"] = st.step
        if st.detail:
            entry["detail"] = st.detail[:300]
        hosts.append(entry)
    conditions = [
        {
            "type": c.type,
            "status": c.status,
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": timestamp(c.at),
        }
        for c in rec.conditions
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": rec.pr_id},
        "status": {
            "provisioningStatus": provisioning,
            "conditions": conditions,
            "hosts": hosts,
            "observedGeneration": rec.generation,
        },
    }


def _digest(obj: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(), digest_size=16).digest()


class Mirror:
    def __init__(
        self,
        store: RecordStore[PrRecord],
        client: KubeClient,
        *,
        field_manager: str = "o2ims",
        interval: float = INTERVAL,
    ) -> None:
        self.store = store
        self.kv = store.kv
        self.client = client
        self.field_manager = field_manager
        self.interval = interval
        #: PR id -> (record bytes or None when deleted, revision), the newest seen and not yet written.
        self._latest: dict[str, tuple[bytes | None, int]] = {}
        self._dirty = asyncio.Event()
        #: PR id -> digests of the spec and the status last written to its CR.
        self._written: dict[str, tuple[bytes, bytes | None]] = {}
        #: API writes made (spec, status and delete), for tests and benchmarks.
        self.writes = 0

    async def run(self) -> None:
        # nats-py's watcher is untyped; only iteration and stop() are used.
        watcher: Any = await self.kv.watchall()
        writer = asyncio.create_task(self._write_loop(), name="o2ims-mirror-writer")
        try:
            async for entry in watcher:
                if entry is None:  # the end of the initial replay
                    continue
                deleted = entry.operation in ("DEL", "PURGE") or not entry.value
                self._latest[entry.key] = (None if deleted else entry.value, int(entry.revision or 0))
                self._dirty.set()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _write_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.interval)  # gathering changes: a PR changed many times is written once
            self._dirty.clear()
            batch, self._latest = self._latest, {}
            failed = False
            for key, (value, revision) in batch.items():
                try:
                    await self.sync(key, value, revision)
                except ServiceError as exc:
                    log.warning("mirror_write_failed", pr_id=key, reason=exc.reason, error=exc.message)
                    self._written.pop(key, None)  # unknown what the CR holds now: write it whole next time
                    self._latest.setdefault(key, (value, revision))  # a newer value, if any, supersedes this one
                    failed = True
            if failed:
                await asyncio.sleep(RETRY_DELAY)  # back off before retrying the API server
                self._dirty.set()

    async def sync(self, key: str, value: bytes | None, revision: int = 0) -> None:
        try:
            # Mostly the revision o2ims has just written: the store has it decoded already.
            rec = self.store.decode(key, value, revision) if value else None
        except PermanentError as exc:
            log.error("mirror_record_unreadable", pr_id=key, error=exc.message)
            return
        if rec is None or rec.state == "deleted":
            self._written.pop(key, None)
            self.writes += 1
            await self.client.delete(API_VERSION, KIND, key)
            return
        spec, status = cr_object(rec), cr_status(rec)
        spec_digest, status_digest = _digest(spec), _digest(status)
        written = self._written.get(key)
        if written is None or written[0] != spec_digest:
            self.writes += 1
            await self.client.apply(spec, field_manager=self.field_manager)
            self._written[key] = written = (spec_digest, None)
        if written[1] != status_digest:
            self.writes += 1
            await self.client.apply_status(status, field_manager=self.field_manager)
            self._written[key] = (spec_digest, status_digest)


async def start_mirror(runtime: ServiceRuntime[O2imsSettings], store: RecordStore[PrRecord]) -> None:
    client = await connect(runtime.settings.mirror_kubeconfig, setting="O2_O2IMS_MIRROR_KUBECONFIG")
    runtime.on_close(client.close)
    mirror = Mirror(store, client, field_manager=runtime.settings.mirror_field_manager)
    runtime.background(mirror.run(), "o2ims-mirror")
