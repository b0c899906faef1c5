"""focom with a VIP pool on a real nats-server: a refused request gives its VIP back, an accepted one keeps it.

The VIP is taken before the host leases; when those fail (a host held by another request) nothing stays
reserved, VIP included. A re-submission of an accepted request gets the VIP its PR already holds.
"""

from __future__ import annotations

from pathlib import Path

from shared.bus import Bus
from shared.payloads import pr_id_for
from shared.subjects import BUCKET_VIPS
from shared.vips import VipLeases
from tests.integration.focom.support import start_focom, write_inventory

INVENTORY = {
    "k8s_version": "1.31.4",
    "hosts": [
        {"host_id": i, "host_name": f"node-{i}", "host_ip": f"10.30.0.{i}", "host_pwd": "pw"} for i in range(1, 5)
    ],
    "clusters": [
        {
            "cluster_name": "ha",
            "cluster_masters": [{"host_id": 1}, {"host_id": 2}, {"host_id": 3}],
            "cluster_workers": [{"host_id": 4}],
        }
    ],
}


async def test_a_refused_request_returns_its_vip_and_a_replay_keeps_it(bus: Bus, tmp_path: Path) -> None:
    # The pool's first addresses are hosts' own: they are skipped.
    h = await start_focom(bus, write_inventory(tmp_path / "input.json", INVENTORY), vip_pool=["10.30.0.1-10.30.0.9"])
    vips = VipLeases(await bus.kv(BUCKET_VIPS), ())
    await h.leases.acquire("someone-else", ["2"])
    await h.submit("first", clusterNames=["ha"])
    failure = await h.wait_failure("first")
    assert failure.reason == "HostLeased"
    assert await vips.all() == {}  # the VIP taken for the request went back with it

    await h.leases.release("someone-else", ["2"])
    await h.submit("second", clusterNames=["ha"])
    (pr,) = await h.commands.wait(lambda: h.prs("second"))
    assert pr.spec is not None and pr.spec.vip == "10.30.0.5"
    assert await vips.all() == {"10.30.0.5": pr_id_for("second", "ha")}

    again = await h.submit("second", clusterNames=["ha"])
    await h.wait_handled([again])
    assert await vips.all() == {"10.30.0.5": pr_id_for("second", "ha")}
    assert [p.spec.vip for p in h.prs("second") if p.spec] == ["10.30.0.5"]  # the replay was a duplicate
