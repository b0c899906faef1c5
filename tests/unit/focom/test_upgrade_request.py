"""Resolving a FOCOM ``upgrade`` (``shared.focom_upgrade``): the version asked for, spare candidates, the new spec."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import InputError
from shared.focom_upgrade import upgrade_spare_candidates, upgrade_version, upgraded_spec
from shared.inventory import Inventory, validate_inventory
from shared.payloads import FocomRequest
from tests.unit.focom.conftest import valid_inventory


def inv(version: str = "v1.32.0", **cluster_versions: str) -> Inventory:
    data: dict[str, Any] = valid_inventory()
    data["k8s_version"] = version
    for c in data["clusters"]:
        if c["cluster_name"] in cluster_versions:
            c["k8s_version"] = cluster_versions[c["cluster_name"]]
    return validate_inventory(data)


def req(**fields: Any) -> FocomRequest:
    return FocomRequest(name="f", operation="upgrade", **({"clusterNames": ("smo",)} | fields))


def test_the_version_comes_from_the_cluster_else_the_inventory_else_the_template() -> None:
    assert upgrade_version(req(), "smo", inv()) == ("v1.32.0", "inventory $.k8s_version")
    assert upgrade_version(req(), "smo", inv(smo="1.31.9")) == ("v1.31.9", "inventory $.clusters[0].k8s_version")
    template = req(clusterNames=None, templateName="byoh-workload-cluster", templateParameters={"k8sVersion": "1.33.1"})
    assert upgrade_version(template, "smo", inv()) == ("v1.33.1", "$.templateParameters.k8sVersion")


@pytest.mark.parametrize("raw", ["1.37.0", "v1.28.9", "latest"])
def test_a_version_outside_the_supported_window_or_malformed_is_refused(raw: str) -> None:
    template = req(clusterNames=None, templateName="byoh-workload-cluster", templateParameters={"k8sVersion": raw})
    with pytest.raises(InputError) as err:
        upgrade_version(template, "smo", inv())
    assert err.value.path == "$.templateParameters.k8sVersion"


def test_spares_are_unassigned_hosts_and_the_new_spec_names_one() -> None:
    inventory = inv()
    current = inventory.cluster_spec(inventory.clusters[0], default_cni=None, path="$.clusters[0]")
    assert upgrade_spare_candidates(current, inventory) == ["h7", "h8", "h9"]
    new = upgraded_spec(req(), current, "v1.32.0", "h7", inventory)
    assert new.k8s_version == "v1.32.0" and [h.host_id for h in new.control_plane] == ["h7"]
    assert new.workers == current.workers
    with pytest.raises(InputError) as err:
        upgraded_spec(req(), current, "v1.32.0", None, inventory)
    assert err.value.reason == "NoSpareHost"
