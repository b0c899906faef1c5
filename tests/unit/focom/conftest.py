"""A small valid inventory for the focom unit tests (three clusters, three spare hosts)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

BASE: dict[str, Any] = {
    "k8s_version": "v1.31.4",
    "hosts": [{"host_id": f"h{i}", "host_name": f"node-{i}", "host_ip": f"10.0.0.{i}"} for i in range(1, 10)],
    "clusters": [
        {
            "cluster_name": "smo",
            "cluster_masters": [{"host_id": "h1"}],
            "cluster_workers": [{"host_id": "h2"}],
            "control_plane_endpoint": "10.0.1.1",
        },
        {
            "cluster_name": "ran",
            "cluster_masters": [{"host_id": "h3"}, {"host_id": "h4"}, {"host_id": "h5"}],
            "cluster_workers": [{"host_id": "h6"}],
            "control_plane_endpoint": "10.0.1.2",
        },
    ],
}


def valid_inventory() -> dict[str, Any]:
    return copy.deepcopy(BASE)


@pytest.fixture
def inventory_data() -> dict[str, Any]:
    return valid_inventory()
