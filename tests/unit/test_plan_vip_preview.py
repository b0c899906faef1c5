"""``o2ctl plan`` previews pool VIPs the way focom allocates them: in pool order, never a host's or a named VIP."""

from __future__ import annotations

from o2ctl.plan import _preview_vips
from services.focom import request as rq
from services.focom.settings import FocomSettings
from shared.catalog import load_catalog
from shared.inventory import validate_inventory
from shared.payloads import FocomRequest


def test_preview_skips_hosts_and_named_vips_and_gives_each_cluster_its_own() -> None:
    hosts = [{"host_id": i, "host_name": f"n{i}", "host_ip": f"10.0.0.{i}"} for i in range(1, 8)]
    data = {
        "k8s_version": "1.31.4",
        "hosts": hosts,
        "clusters": [
            {"cluster_name": "a", "cluster_masters": [{"host_id": 1}, {"host_id": 2}, {"host_id": 3}]},
            {"cluster_name": "b", "cluster_masters": [{"host_id": 4}, {"host_id": 5}, {"host_id": 6}]},
            {"cluster_name": "c", "cluster_masters": [{"host_id": 7}], "control_plane_endpoint": "10.0.0.9"},
        ],
    }
    inventory = validate_inventory(data, vip_pool=True)
    focom = FocomSettings(vip_pool=["10.0.0.6-10.0.0.12"])
    wanted = rq.create_targets(
        FocomRequest(name="p", allClusters=True),
        inventory,
        load_catalog(),
        window=focom.k8s_window,
        vip_pool=True,
        max_clusters=10,
    )
    # .6 and .7 are hosts, .9 is cluster c's own VIP: a gets .8, b gets .10; c keeps its endpoint.
    assert _preview_vips(wanted, inventory, focom) == {"a": "10.0.0.8", "b": "10.0.0.10"}
