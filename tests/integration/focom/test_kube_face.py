"""The Kubernetes face on the API emulator: a FocomProvisioningRequest applied ends Synced; deleting it deletes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.focom import crs
from services.focom.kube_face import KubeFace
from services.focom.settings import FocomSettings
from shared.bus import Bus, MessageContext
from shared.dispatch import Dispatch, dispatch
from shared.kube import KubeClient
from shared.objects import meta, name_of
from shared.payloads import FprStatus, MessageFailed, PrRequest
from shared.subjects import FOCOM_CR_STATUS_CONSUMER
from tests.integration.focom.support import EXAMPLES, Harness, example_inventory, start_focom, wait_cr


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    c = await KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def face(bus: Bus, tmp_path: Path, kubeconfig: Path) -> AsyncIterator[tuple[Harness, KubeFace]]:
    h = await start_focom(bus, example_inventory(tmp_path))
    settings = FocomSettings(inventory_path=tmp_path / "input.json", kube_enabled=True, kubeconfig=kubeconfig)
    kf = await KubeFace.create(settings, bus, h.focom)
    await bus.consumer(FOCOM_CR_STATUS_CONSUMER, dispatch(kf.on_status, kf.on_refusal)).start()
    stop = asyncio.Event()
    task = asyncio.create_task(kf.run(stop))
    try:
        yield h, kf
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop_consumers(5)
        await h.focom.writer.close()
        await kf.close()


def phase(value: str) -> Callable[[dict[str, Any] | None], bool]:
    return lambda obj: obj is not None and (obj.get("status") or {}).get("phase") == value


async def report_all(h: Harness, prs: list[PrRequest], *states: str) -> None:
    for state in states:
        for pr in prs:
            await h.report(pr, state)


async def test_example_cr_ends_synced_and_its_deletion_deletes(
    face: tuple[Harness, KubeFace], client: KubeClient
) -> None:
    h, _ = face
    cr = yaml.safe_load((EXAMPLES / "focom-all-clusters.yaml").read_text())
    await client.apply(cr, field_manager="kubectl")  # what `kubectl apply --server-side -f` sends
    prs = await h.commands.wait(lambda: len(h.prs("all-clusters")) == 3 and h.prs("all-clusters"))
    await wait_cr(client, "all-clusters", phase("Creating"))
    await report_all(h, prs, "progressing", "fulfilled")
    obj = await wait_cr(client, "all-clusters", phase("Synced"))
    assert obj is not None
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert sorted((c["cluster"], c["state"]) for c in status["children"]) == [
        ("edge", "fulfilled"),
        ("ran", "fulfilled"),
        ("smo", "fulfilled"),
    ]
    assert status["lastUpdated"] and crs.FINALIZER in obj["metadata"]["finalizers"]
    # Deleting the CR deletes its clusters first; the CR goes once they are gone.
    await client.delete(crs.API_VERSION, crs.KIND, "all-clusters", "default")
    deletes = await h.commands.wait(
        lambda: (
            len([p for p in h.prs("all-clusters") if p.operation == "delete"]) == 3
            and [p for p in h.prs("all-clusters") if p.operation == "delete"]
        )
    )
    await wait_cr(client, "all-clusters", phase("Deleting"))
    await report_all(h, deletes, "deleting", "deleted")
    await wait_cr(client, "all-clusters", lambda obj: obj is None)


async def test_spec_change_scales_and_bad_spec_is_refused(face: tuple[Harness, KubeFace], client: KubeClient) -> None:
    h, _ = face
    cr = yaml.safe_load((EXAMPLES / "focom-cluster-names.yaml").read_text())
    await client.apply(cr, field_manager="kubectl")
    prs = await h.commands.wait(lambda: len(h.prs("smo-and-ran")) == 2 and h.prs("smo-and-ran"))
    await report_all(h, prs, "fulfilled")
    await wait_cr(client, "smo-and-ran", phase("Synced"))
    scale = yaml.safe_load((EXAMPLES / "focom-cluster-names-scale.yaml").read_text())
    await client.apply(scale, field_manager="kubectl")
    update = await h.commands.wait(lambda: [p for p in h.prs("smo-and-ran") if p.operation == "update"])
    assert update[0].spec and [w.host_id for w in update[0].spec.workers] == ["h02", "h03", "h12"]
    await wait_cr(client, "smo-and-ran", phase("Scaling"))
    await h.report(update[0], "fulfilled")
    await wait_cr(client, "smo-and-ran", phase("Synced"))
    # Two modes at once: refused, with the reason and the path in the CR's status.
    bad = {**cr, "metadata": {"name": "two-modes"}, "spec": {"allClusters": True, "clusterNames": ["smo"]}}
    await client.apply(bad, field_manager="kubectl")
    obj = await wait_cr(client, "two-modes", phase("Failed"))
    assert obj is not None and obj["status"]["path"] == "$" and "one-mode" in obj["status"]["message"]
    assert h.prs("two-modes") == []


async def _start_face(
    h: Harness, bus: Bus, tmp_path: Path, kubeconfig: Path
) -> tuple[KubeFace, asyncio.Task[None], asyncio.Event]:
    settings = FocomSettings(inventory_path=tmp_path / "input.json", kube_enabled=True, kubeconfig=kubeconfig)
    kf = await KubeFace.create(settings, bus, h.focom)
    stop = asyncio.Event()
    return kf, asyncio.create_task(kf.run(stop)), stop


async def _stop_face(kf: KubeFace, task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await kf.close()


def refused(obj: dict[str, Any] | None) -> bool:
    status = (obj or {}).get("status") or {}
    return (
        status.get("reason") == "NameInUse"
        and status.get("phase") == "Failed"
        and status.get("observedGeneration") == (obj or {}).get("metadata", {}).get("generation")
    )


async def test_a_cr_in_another_namespace_never_takes_over_an_fpr_name_not_even_after_a_restart(
    bus: Bus, tmp_path: Path, kubeconfig: Path, client: KubeClient
) -> None:
    """The owner's CR is in `default`; a CR of the same name in `aaa` (listed first after a restart) is
    refused with observedGeneration, and deleting it deletes nothing."""
    h = await start_focom(bus, example_inventory(tmp_path))
    await bus.consumer(FOCOM_CR_STATUS_CONSUMER, _status_of(h)).start()
    cr = yaml.safe_load((EXAMPLES / "focom-all-clusters.yaml").read_text())
    kf, task, stop = await _start_face(h, bus, tmp_path, kubeconfig)
    _FACES.append(kf)
    try:
        await client.apply(cr, field_manager="kubectl")
        prs = await h.commands.wait(lambda: len(h.prs("all-clusters")) == 3 and h.prs("all-clusters"))
        await report_all(h, prs, "progressing", "fulfilled")
        await wait_cr(client, "all-clusters", phase("Synced"))
        await client.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "aaa"}}, field_manager="kubectl"
        )
        rival = {
            **cr,
            "metadata": {"name": "all-clusters", "namespace": "aaa"},
            "spec": {"operation": "delete", "allClusters": True},
        }
        await client.apply(rival, field_manager="kubectl")
        obj = await wait_cr(client, "all-clusters", refused, namespace="aaa")
        assert obj is not None and "'default'" in obj["status"]["message"]
    finally:
        await _stop_face(kf, task, stop)
    # A restart forgets everything in memory; the list now returns the rival (namespace aaa) first.
    items, _ = await client.list(crs.API_VERSION, crs.KIND)
    assert next(meta(o)["namespace"] for o in items if name_of(o) == "all-clusters") == "aaa"
    kf, task, stop = await _start_face(h, bus, tmp_path, kubeconfig)
    _FACES[0] = kf
    try:
        rival_now = await wait_cr(client, "all-clusters", refused, namespace="aaa")
        assert rival_now is not None
        # The rival changes its spec: a new generation, refused again; still nothing published for it.
        await client.apply({**rival, "spec": {"operation": "delete", "clusterNames": ["smo"]}}, field_manager="kubectl")
        await wait_cr(
            client,
            "all-clusters",
            lambda o: (
                refused(o) and o is not None and o["metadata"]["generation"] == rival_now["metadata"]["generation"] + 1
            ),
            namespace="aaa",
        )
        await client.delete(crs.API_VERSION, crs.KIND, "all-clusters", "aaa")
        await wait_cr(client, "all-clusters", lambda o: o is None, namespace="aaa")
        owner = await wait_cr(client, "all-clusters", phase("Synced"))
        assert owner is not None and crs.FINALIZER in owner["metadata"]["finalizers"]
        assert [p for p in h.prs("all-clusters") if p.operation != "create"] == []
        record = await h.record("all-clusters")
        assert record is not None and record.phase == "Synced"
        # The owner itself is never refused after the restart.
        assert (owner.get("status") or {}).get("reason") != "NameInUse"
    finally:
        await _stop_face(kf, task, stop)
        await bus.stop_consumers(5)
        await h.focom.writer.close()


_FACES: list[KubeFace] = []


def _status_of(h: Harness) -> Dispatch:
    """Route the CR status consumer to whichever face is current (the test restarts the face)."""

    async def on_status(status: FprStatus, ctx: MessageContext) -> None:
        if _FACES:
            await _FACES[0].on_status(status, ctx)

    async def on_refusal(failed: MessageFailed, ctx: MessageContext) -> None:
        if _FACES:
            await _FACES[0].on_refusal(failed, ctx)

    return dispatch(on_status, on_refusal)


async def test_a_cr_whose_name_no_request_can_carry_is_refused_and_deletes_cleanly(
    face: tuple[Harness, KubeFace], client: KubeClient
) -> None:
    """A dotted name is a valid object name but no FPR name: refused, and its deletion is not held by our finalizer."""
    h, _ = face
    cr = yaml.safe_load((EXAMPLES / "focom-all-clusters.yaml").read_text())
    cr["metadata"] = {"name": "all.clusters", "namespace": "default"}
    await client.apply(cr, field_manager="kubectl")
    obj = await wait_cr(client, "all.clusters", phase("Failed"))
    assert obj is not None and (obj["status"]["reason"], obj["status"]["path"]) == ("InvalidRequest", "$.spec.name")
    assert h.prs("all.clusters") == []
    await client.delete(crs.API_VERSION, crs.KIND, "all.clusters", "default")
    await wait_cr(client, "all.clusters", lambda o: o is None)
