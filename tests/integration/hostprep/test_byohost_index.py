"""The shared ByoHost watch: each waiting host wakes for its own ByoHosts only, and a re-list wakes everyone."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from services.hostprep.byohosts import INFRA_VERSION, ByoHostIndex
from shared.kube import KubeClient
from shared.objects import HOST_ID_LABEL

HOSTS = [f"host-{i:03d}" for i in range(1, 21)]


def byohost(host_id: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": INFRA_VERSION,
        "kind": "ByoHost",
        "metadata": {"name": f"node-{host_id}", "namespace": "default", "labels": {HOST_ID_LABEL: host_id, **labels}},
        "spec": {},
    }


async def test_each_wait_ends_on_its_own_host_and_is_woken_by_its_changes_only(kubeconfig: Path) -> None:
    client = await KubeClient.from_kubeconfig(kubeconfig)
    index = ByoHostIndex(client)
    tested: Counter[str] = Counter()

    def registered_at(host_id: str, version: str) -> Any:
        def done(objs: list[dict[str, Any]]) -> bool:
            tested[host_id] += 1
            return any(o["metadata"]["labels"].get("v") == version for o in objs)

        return done

    try:
        waits = {h: asyncio.create_task(index.wait("default", h, registered_at(h, "2"), 60)) for h in HOSTS}
        await index.present("default", HOSTS[0], 60)  # the shared list+watch is up
        for host_id in HOSTS:
            await client.create(byohost(host_id, v="1"))  # registered, but not at the awaited version
        for host_id in HOSTS:
            await client.patch(
                INFRA_VERSION, "ByoHost", f"node-{host_id}", "default", {"metadata": {"labels": {"v": "2"}}}
            )
            found = await waits[host_id]
            assert found is not None and [o["metadata"]["name"] for o in found] == [f"node-{host_id}"]
            assert all(not waits[h].done() for h in HOSTS[HOSTS.index(host_id) + 1 :])
        # Each predicate ran on its own host's changes (and the first check) only: never once per other
        # host's event, which made a thousand waiting hosts quadratic. The created and patched events may
        # arrive in one batch, so at most three tests each.
        assert all(1 <= tested[h] <= 3 for h in HOSTS), tested
    finally:
        await index.close()
        await client.close()


async def test_a_wait_times_out_and_a_late_waiter_sees_the_current_state(kubeconfig: Path) -> None:
    client = await KubeClient.from_kubeconfig(kubeconfig)
    index = ByoHostIndex(client)
    try:
        assert await index.wait("default", "host-001", bool, 0.2) is None
        await client.create(byohost("host-001"))
        found = await index.wait("default", "host-001", bool, 60)
        assert found is not None and len(found) == 1
        await client.delete(INFRA_VERSION, "ByoHost", "node-host-001", "default")
        assert await index.wait("default", "host-001", lambda objs: not objs, 60) == []
    finally:
        await index.close()
        await client.close()
