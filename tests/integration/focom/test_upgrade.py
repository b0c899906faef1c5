"""focom's ``upgrade`` operation on a real nats-server: the version the inventory now names, spares, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.bus import Bus
from shared.payloads import PrRequest
from tests.integration.focom.support import Harness, example_inventory, start_focom, write_inventory
from tests.integration.focom.test_handlers import synced

FROM, TO = "v1.31.4", "v1.32.1"


def inventory_at(path: Path, version: str, **cluster_versions: str) -> Path:
    """The inventory with every cluster at ``version`` except those named (at theirs)."""
    data: dict[str, Any] = json.loads(path.read_text())
    data["k8s_version"] = version
    for cluster in data["clusters"]:
        cluster.pop("k8s_version", None)
        if cluster["cluster_name"] in cluster_versions:
            cluster["k8s_version"] = cluster_versions[cluster["cluster_name"]]
    return write_inventory(path, data)


def updates(h: Harness, name: str) -> list[PrRequest]:
    return [p for p in h.prs(name) if p.operation == "update"]


async def test_upgrade_moves_clusters_to_the_inventorys_version_with_a_spare_for_a_single_control_plane(
    bus: Bus, tmp_path: Path
) -> None:
    path = inventory_at(example_inventory(tmp_path), FROM)
    h = await start_focom(bus, path)
    prs = {p.spec.name: p for p in await synced(h, "fleet", allClusters=True) if p.spec}
    assert {p.spec.k8s_version for p in prs.values() if p.spec} == {FROM}
    inventory_at(path, TO)
    await h.submit("fleet", operation="upgrade", allClusters=True)
    status = await h.wait_phase("fleet", "Upgrading")
    assert status.operation == "upgrade"
    got = await h.commands.wait(lambda: len(updates(h, "fleet")) == 3 and updates(h, "fleet"))
    specs = {p.spec.name: p.spec for p in got if p.spec}
    assert {s.k8s_version for s in specs.values()} == {TO}
    # ran (3 control planes) keeps its hosts; smo and edge (one each) move to distinct unassigned hosts.
    assert [c.host_id for c in specs["ran"].control_plane] == ["h04", "h05", "h06"]
    spares = {specs[c].control_plane[0].host_id for c in ("smo", "edge")}
    assert spares <= {"h10", "h11", "h12"} and len(spares) == 2
    for cluster in ("smo", "edge"):
        assert specs[cluster].workers == prs[cluster].spec.workers  # type: ignore[union-attr]
        spare = specs[cluster].control_plane[0].host_id
        assert await h.leases.owner_of(spare) == prs[cluster].pr_id
    # The old control-plane hosts keep their leases: o2ims releases them once reset.
    assert await h.leases.owner_of("h01") == prs["smo"].pr_id
    assert await h.leases.owner_of("h08") == prs["edge"].pr_id
    # Submitted again, nothing changes (the clusters are at the version already, as decided).
    before = len(h.prs("fleet"))
    again = await h.submit("fleet", operation="upgrade", allClusters=True)
    await h.wait_handled([again])
    assert len(h.prs("fleet")) == before
    for pr in got:
        await h.report(pr, "progressing", "upgrade-control-plane")
        await h.report(pr, "fulfilled")
    await h.wait_phase("fleet", "Synced")


async def test_refusals_name_the_rule_and_change_nothing(bus: Bus, tmp_path: Path) -> None:
    path = inventory_at(example_inventory(tmp_path), FROM)
    h = await start_focom(bus, path)
    await synced(h, "one", clusterNames=("smo",))
    leases = await h.leases.all()

    async def refused(reason: str) -> None:
        await h.submit("one", operation="upgrade", clusterNames=("smo",))
        failure = await h.statuses.wait(lambda: [f for f in h.failures("one") if f.reason == reason])
        assert "smo" in failure[0].error
        assert updates(h, "one") == [] and await h.leases.all() == leases

    inventory_at(path, "v1.33.0")
    await refused("MinorVersionSkip")
    inventory_at(path, "v1.30.9")
    await refused("Downgrade")
    # Every unassigned host held by another request: a single control plane has no spare.
    await h.leases.acquire("someone-else", ["h10", "h11", "h12"])
    leases = await h.leases.all()
    inventory_at(path, FROM, smo=TO)
    await refused("NoSpareHost")
