"""Change control on the CR face: an applied FocomProvisioningRequest waits in PendingApproval with its plan in
``status.plan``, holding nothing, until the approver annotates it ``focom.nephio.org/decision=approve``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from services.focom import crs
from services.focom.kube_face import KubeFace
from services.focom.settings import FocomSettings
from shared.bus import Bus
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.payloads import pr_id_for
from shared.subjects import FOCOM_CR_STATUS_CONSUMER
from tests.integration.focom.support import EXAMPLES, Harness, example_inventory, start_focom, wait_cr
from tests.integration.focom.test_kube_face import client, phase

__all__ = ["client"]


@pytest.fixture
async def gated(bus: Bus, tmp_path: Path, kubeconfig: Path) -> AsyncIterator[Harness]:
    h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
    settings = FocomSettings(
        inventory_path=tmp_path / "input.json", kube_enabled=True, kubeconfig=kubeconfig, require_approval=True
    )
    kf = await KubeFace.create(settings, bus, h.focom)
    await bus.consumer(FOCOM_CR_STATUS_CONSUMER, dispatch(kf.on_status, kf.on_refusal)).start()
    stop = asyncio.Event()
    task = asyncio.create_task(kf.run(stop))
    try:
        yield h
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop_consumers(5)
        await h.focom.writer.close()
        await kf.close()


async def test_cr_waits_for_the_approval_annotation(gated: Harness, client: KubeClient) -> None:
    h = gated
    cr = yaml.safe_load((EXAMPLES / "focom-cluster-names.yaml").read_text())
    name = cr["metadata"]["name"]
    await client.apply(cr, field_manager="kubectl")
    obj = await wait_cr(client, name, phase("PendingApproval"))
    assert obj is not None
    plan = obj["status"]["plan"]
    assert sorted(p["cluster"] for p in plan) == sorted(cr["spec"]["clusterNames"])
    assert all(p["prId"] == pr_id_for(name, p["cluster"]) and p["controlPlane"] for p in plan)
    assert await h.leases.all() == {} and h.prs(name) == []
    patch = {"metadata": {"annotations": {crs.DECISION_ANNOTATION: "approve"}}}
    await client.patch(crs.API_VERSION, crs.KIND, name, "default", patch)
    await wait_cr(client, name, phase("Creating"))
    held = {h_ for p in plan for h_ in (*p["controlPlane"], *p["workers"])}
    assert set(await h.leases.all()) == held
    assert len(h.prs(name)) == len(plan)
