"""Crafted addresses: zone ids refused everywhere, one machine has one address, every maxLength enforced.

Each case here passed before the strict address types: Python's ``ipaddress`` accepts any text after
``%`` (newlines, ``$()``, ``;``) as an IPv6 zone id, and ``10.10.0.11`` / ``::ffff:10.10.0.11`` compared
unequal, so one machine could be leased to two clusters under two host ids.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.inventory import InventoryError, inventory_json_schema, validate_inventory
from shared.messages import Envelope, decode
from shared.models import ClusterSpec, HostRef, normalize_cidr, normalize_ip, parse_ip
from shared.payloads import CapiJob, PrRequest

ZONES = ["fe80::1%eth0", "fe80::1%\nExecStartPre=/bin/sh", "fe80::1%$(id)", "fe80::1%;reboot", "::1%25lo"]
BASE: dict[str, Any] = {
    "k8s_version": "1.31.4",
    "hosts": [
        {"host_id": i, "host_name": f"node-{i}", "host_ip": f"10.10.0.{10 + i}", "host_pwd": "pw"} for i in range(1, 6)
    ],
    "clusters": [
        {"cluster_name": "smo", "cluster_masters": [{"host_id": 1}], "cluster_workers": [{"host_id": 2}]},
        {
            "cluster_name": "ran",
            "cluster_masters": [{"host_id": 3}, {"host_id": 4}, {"host_id": 5}],
            "control_plane_endpoint": "10.10.0.200",
        },
    ],
}


def inventory(**where: Any) -> dict[str, Any]:
    """The base inventory with ``path=value`` changes (``hosts.0.host_ip=...``)."""
    data = copy.deepcopy(BASE)
    for path, value in where.items():
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return data


def problems(data: dict[str, Any], **kw: Any) -> set[tuple[str, str]]:
    with pytest.raises(InventoryError) as err:
        validate_inventory(data, **kw)
    return {(p.path, p.rule) for p in err.value.problems}


def test_the_base_inventory_is_the_user_guide_format_and_valid() -> None:
    inv = validate_inventory(inventory())
    smo = inv.cluster_spec(inv.clusters[0])
    assert smo.vip is None and smo.endpoint == "10.10.0.11"


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("hosts.0.host_ip", "{z}", "ip-address"),
        ("clusters.1.control_plane_endpoint", "{z}", "ip-address"),
        ("clusters.0.pod_cidr", "{z}/64", "cidr"),
        ("clusters.0.service_cidr", "{z}/120", "cidr"),
    ],
)
def test_zone_ids_are_refused_in_every_inventory_address(zone: str, field: str, value: str, rule: str) -> None:
    text = value.format(z=zone)
    if (len(text) > 45 and rule == "ip-address") or len(text) > 49:
        rule = "max-length"
    path = "$." + field.replace(".0.", "[0].").replace(".1.", "[1].")
    assert (path, rule) in problems(inventory(**{field: text}))


@pytest.mark.parametrize("zone", ZONES)
def test_zone_ids_are_refused_in_specs_and_bus_payloads(zone: str) -> None:
    with pytest.raises(ValueError):
        parse_ip(zone)
    with pytest.raises(ValidationError):
        HostRef(host_id="h1", host_name="n1", host_ip=zone)
    good = HostRef(host_id="h1", host_name="n1", host_ip="10.0.0.1")
    with pytest.raises(ValidationError):
        ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(good,), vip=zone)
    with pytest.raises(ValidationError):
        ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(good,), pod_cidr=f"{zone}/64")
    # The same text smuggled into a message on the bus is refused at decode, before any handler.
    spec = ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(good,), vip="10.0.0.100")
    job = CapiJob(pr_id=str(uuid.uuid4()), action="apply", spec=spec)
    raw = json.loads(Envelope.wrap(job, source="test").model_dump_json())
    raw["payload"]["spec"]["control_plane"][0]["host_ip"] = zone
    with pytest.raises(Exception) as err:
        decode(json.dumps(raw).encode())
    assert "host_ip" in str(err.value)


def test_addresses_are_canonical() -> None:
    assert normalize_ip("::ffff:10.10.0.11") == "10.10.0.11"
    assert normalize_ip("2001:0DB8:0:0::1") == "2001:db8::1"
    assert normalize_cidr("FD00:0::/64") == "fd00::/64"
    assert normalize_cidr("::ffff:10.244.0.0/112") == "10.244.0.0/16"
    ref = HostRef(host_id="h1", host_name="n1", host_ip="::FFFF:10.10.0.11")
    assert ref.host_ip == "10.10.0.11"
    inv = validate_inventory(inventory(**{"hosts.0.host_ip": "::ffff:10.10.0.99"}))
    assert inv.hosts[0].host_ip == "10.10.0.99"


@pytest.mark.parametrize("mapped", ["::ffff:10.10.0.11", "::FFFF:a0a:b", "0:0:0:0:0:ffff:10.10.0.11"])
def test_one_machine_is_one_address(mapped: str) -> None:
    # Host 2 written as the IPv4-mapped form of host 1's address: the same machine under two ids.
    assert ("$.hosts[1].host_ip", "unique") in problems(inventory(**{"hosts.1.host_ip": mapped}))
    # A VIP that is a host's address in another spelling is still a host's address.
    got = problems(inventory(**{"clusters.1.control_plane_endpoint": mapped}))
    assert ("$.clusters[1].control_plane_endpoint", "vip-not-host") in got
    a = HostRef(host_id="h1", host_name="n1", host_ip="10.10.0.11")
    b = HostRef(host_id="h2", host_name="n2", host_ip=mapped)
    with pytest.raises(ValidationError, match="more than one host"):
        ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(a,), workers=(b,))
    with pytest.raises(ValidationError, match="equals a host address"):
        ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(a,), vip=mapped)


def test_ha_control_plane_needs_a_vip_unless_a_pool_is_configured() -> None:
    data = inventory()
    del data["clusters"][1]["control_plane_endpoint"]
    assert problems(data) == {("$.clusters[1].control_plane_endpoint", "vip-required")}
    assert validate_inventory(data, vip_pool=True).clusters[1].control_plane_endpoint is None
    hosts = tuple(HostRef(host_id=f"h{i}", host_name=f"n{i}", host_ip=f"10.0.0.{i}") for i in range(3))
    with pytest.raises(ValidationError, match="needs a VIP"):
        ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=hosts)


# ── maxLength: every limit the published schema states is a limit validation enforces ─────────


def _string_limits(schema: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Model name → property → maxLength, for every string property of the inventory's schema."""
    out: dict[str, dict[str, int]] = {}
    defs = schema["$defs"]
    for model, body in [("Inventory", schema), *defs.items()]:
        for name, prop in body.get("properties", {}).items():
            options = [prop, *prop.get("anyOf", [])]
            limit = next((o["maxLength"] for o in options if "maxLength" in o), None)
            if limit is not None:
                out.setdefault(model, {})[name] = limit
    return out


SAMPLE = {
    "host_ip": "1",
    "control_plane_endpoint": "1",
    "pod_cidr": "1",
    "service_cidr": "1",
    "k8s_version": "1",
    "host_id": "a",
    "host_name": "a",
    "cluster_name": "a",
    "namespace": "a",
    "host_user": "a",
    "host_pwd": "a",
    "ssh_key_file": "a",
    "cni": "a",
    "$schema": "a",
}
WHERE = {
    "Inventory": "",
    "InventoryHost": "hosts.0.",
    "InventoryCluster": "clusters.0.",
    "HostSelector": "clusters.0.cluster_masters.0.",
}


def test_every_schema_max_length_is_enforced() -> None:
    limits = _string_limits(inventory_json_schema())
    assert limits["InventoryHost"]["host_ip"] == 45 and limits["InventoryCluster"]["k8s_version"] == 32
    checked = 0
    for model, props in limits.items():
        for name, limit in props.items():
            value = SAMPLE[name] * (limit + 1)
            data = (
                inventory(**{f"{WHERE[model]}{name}": value}) if model != "Inventory" else {**inventory(), name: value}
            )
            got = problems(data)
            path = "$." + f"{WHERE[model]}{name}".replace(".0.", "[0].").replace(".0", "[0]")
            assert any(p == path for p, _ in got), f"{model}.{name}: {limit + 1} characters accepted ({got})"
            checked += 1
    assert checked >= 12


def test_a_long_well_formed_version_is_refused() -> None:
    # ``\\d+`` had no bound: a 40-digit minor passed although the schema says 32 characters at most.
    assert ("$.k8s_version", "max-length") in problems(inventory(k8s_version="1." + "3" * 40 + ".4"))


# ── ssh_key_file: only files in the key directory ──────────────────────────────────────────


def test_key_files_must_stay_in_the_key_directory(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id").write_text("key")
    (tmp_path / "outside").write_text("not ours")
    (keys / "link").symlink_to(tmp_path / "outside")
    ok = validate_inventory(
        inventory(**{"hosts.0.ssh_key_file": "id", "hosts.1.ssh_key_file": str(keys / "id")}), ssh_key_dir=keys
    )
    assert ok.credentials("1", keys)[0] == keys / "id" and ok.credentials("2", keys)[0] == keys / "id"
    for bad in (
        "/root/.ssh/id_rsa",
        "../outside",
        str(keys / ".." / "outside"),
        "sub/../../outside",
        "link",
        str(keys),
        "/",
    ):
        got = problems(inventory(**{"hosts.0.ssh_key_file": bad}), ssh_key_dir=keys)
        assert got == {("$.hosts[0].ssh_key_file", "key-dir")}, bad


def test_pr_request_payload_refuses_a_crafted_spec() -> None:
    good = HostRef(host_id="h1", host_name="n1", host_ip="10.0.0.1")
    spec = ClusterSpec(name="c", k8s_version="v1.31.4", control_plane=(good,))
    raw = json.loads(
        Envelope.wrap(
            PrRequest(pr_id=str(uuid.uuid4()), fpr="f", operation="create", spec=spec), source="test"
        ).model_dump_json()
    )
    raw["payload"]["spec"]["vip"] = "fe80::1%\nkind: ClusterRoleBinding"
    with pytest.raises(Exception) as err:
        decode(json.dumps(raw).encode())
    assert "vip" in str(err.value)
