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


def byohost(host_id: str) -> dict[str, Any]:
    return {
        "apiVersion": INFRA_VERSION,
        "kind": "ByoHost",
        "metadata": {"name": f"node-{host_id}", "namespace": "default", "labels": {HOST_ID_LABEL: host_id}},
        "spec": {},
    }


async def test_each_wait_ends_on_its_own_host_and_is_woken_by_its_changes_only(kubeconfig: Path) -> None:
    client = await KubeClient.from_kubeconfig(kubeconfig)
    index = ByoHostIndex(client)
    tested: Counter[str] = Counter()

    def registered(host_id: str) -> Any:
        def done(objs: list[dict[str, Any]]) -> bool:
            tested[host_id] += 1
            return bool(objs)

        return done

    try:
        waits = {h: asyncio.create_task(index.wait("default", h, registered(h), 60)) for h in HOSTS}
        await index.present("default", HOSTS[0], 60)  # the shared list+watch is up
        for i, host_id in enumerate(HOSTS):
            await client.create(byohost(host_id))
            found = await waits[host_id]
            assert found is not None and [o["metadata"]["name"] for o in found] == [f"node-{host_id}"]
            assert all(not waits[h].done() for h in HOSTS[i + 1 :])
        # Each predicate ran on the first check and its own host's ByoHost only, never once per other
        # host's event (which made a thousand hosts waiting at once quadratic).
        assert all(tested[h] == 2 for h in HOSTS), tested
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
