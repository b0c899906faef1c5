"""The ProvisioningRequest mirror against the Kubernetes API emulator: the CR follows the record."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from services.o2ims.mirror import API_VERSION, KIND, Mirror
from services.o2ims.record import PrRecord
from shared.bus import Bus
from shared.kube import KubeClient
from shared.payloads import PrRequest
from shared.store import RecordStore
from shared.subjects import BUCKET_PR, o2ims_request
from tests.integration.services.procs import ServiceProcess
from tests.unit.o2ims.machine import PR, driven_to


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll the API server until ``probe()`` is truthy (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await probe()
        if got:
            return got
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.05)  # polling the API server for a condition, bounded


async def test_the_crd_has_a_status_subresource_and_state_and_stage_columns(kubeconfig: Path) -> None:
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        crds = {c["metadata"]["name"]: c for c in await client.list_crds()}
    crd = crds["provisioningrequests.o2ims.provisioning.oran.org"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and "status" in version["subresources"]
    assert {"State", "Stage"} <= {c["name"] for c in version["additionalPrinterColumns"]}


async def test_the_cr_follows_the_record_and_goes_with_the_tombstone(bus: Bus, kubeconfig: Path) -> None:
    store = RecordStore(await bus.kv(BUCKET_PR), PrRecord)
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        task = asyncio.create_task(Mirror(store, client).run())
        try:

            async def status() -> dict[str, Any]:
                cr = await client.get(API_VERSION, KIND, PR)
                return ((cr or {}).get("status") or {}).get("provisioningStatus") or {}

            hostprep = driven_to("progressing/hostprep").rec
            assert hostprep is not None
            revision = await store.create(PR, hostprep)
            await eventually(lambda: _has(status, provisioningState="progressing", provisioningStage="hostprep"))
            cr = await client.get(API_VERSION, KIND, PR)
            assert cr is not None and cr["spec"]["templateParameters"]["clusterName"] == "edge1"
            assert [h["hostId"] for h in cr["spec"]["templateParameters"]["hosts"]["workers"]] == ["w0", "w1"]

            fulfilled = driven_to("fulfilled").rec
            assert fulfilled is not None
            revision = await store.update(PR, fulfilled, revision)
            got = await eventually(lambda: _has(status, provisioningState="fulfilled"))
            assert got["provisionedResources"]["nodeClusterId"] == fulfilled.node_cluster_id
            assert "provisioningStage" not in got
            cr = await client.get(API_VERSION, KIND, PR)
            assert cr is not None
            assert {c["type"] for c in cr["status"]["conditions"]} >= {"HostsPrepared", "ClusterProvisioned"}

            deleted = driven_to("deleted").rec
            assert deleted is not None
            await store.update(PR, deleted, revision)

            async def gone() -> bool:
                return await client.get(API_VERSION, KIND, PR) is None

            await eventually(gone)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_record_writes_a_cr_does_not_show_cost_no_api_write(bus: Bus, kubeconfig: Path) -> None:
    """Most record writes (an outbox emptied, a command counter) change nothing the CR shows: not written again."""
    store = RecordStore(await bus.kv(BUCKET_PR), PrRecord)
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        mirror = Mirror(store, client, interval=0.0)
        task = asyncio.create_task(mirror.run())
        try:

            async def status() -> dict[str, Any]:
                cr = await client.get(API_VERSION, KIND, PR)
                return ((cr or {}).get("status") or {}).get("provisioningStatus") or {}

            rec = driven_to("progressing/hostprep").rec
            assert rec is not None
            revision = await store.create(PR, rec)
            await eventually(lambda: _has(status, provisioningState="progressing"))
            assert mirror.writes == 2  # the spec, then the status

            for _ in range(3):  # invisible in the CR
                rec = rec.changed(cmd_seq=rec.cmd_seq + 1)
                revision = await store.update(PR, rec, revision)
            rec = rec.changed(message="now visible")
            await store.update(PR, rec, revision)
            await eventually(lambda: _has(status, provisioningMessage="now visible"))
            assert mirror.writes == 3  # the status once more; the spec never
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _has(status: Callable[[], Awaitable[dict[str, Any]]], **want: str) -> dict[str, Any] | None:
    got = await status()
    return got if all(got.get(k) == v for k, v in want.items()) else None


async def test_the_service_mirrors_when_enabled(bus: Bus, nats_url: str, kubeconfig: Path) -> None:
    env = {"O2_NATS_URL": nats_url, "O2_O2IMS_MIRROR_ENABLED": "true", "O2_O2IMS_MIRROR_KUBECONFIG": str(kubeconfig)}
    proc = await ServiceProcess("services.o2ims", env).start()
    try:
        await proc.wait_event("service_ready")
        spec = driven_to("pending").rec.spec  # type: ignore[union-attr]
        await bus.emit(o2ims_request(PR), PrRequest(pr_id=PR, fpr="fpr-m", operation="create", spec=spec))
        async with await KubeClient.from_kubeconfig(kubeconfig) as client:

            async def pending() -> bool:
                cr = await client.get(API_VERSION, KIND, PR)
                state = (((cr or {}).get("status") or {}).get("provisioningStatus") or {}).get("provisioningState")
                return state == "pending"

            await eventually(pending)
    finally:
        await proc.kill()
