"""Property: any mutation of a valid inventory is either valid or refused with located problems, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InputError
from shared.inventory import InventoryError, parse_inventory, validate_inventory
from tests.unit.focom.conftest import valid_inventory

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            "h1",
            "h2",
            "10.0.0.1",
            "10.96.0.0/12",
            "v1.31.0",
            "1.28.0",
            "node-1",
            "::1",
            "10.0.1.1",
            "fe80::/10",
            "a" * 70,
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "host_id",
    "host_name",
    "host_ip",
    "host_user",
    "host_pwd",
    "ssh_port",
    "ssh_key_file",
    "labels",
    "cluster_name",
    "cluster_masters",
    "cluster_workers",
    "k8s_version",
    "control_plane_endpoint",
    "pod_cidr",
    "service_cidr",
    "cni",
    "namespace",
    "schema_version",
    "hosts",
    "clusters",
    "junk",
]


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = valid_inventory()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        containers = _containers(data, [])
        target = draw(st.sampled_from(containers))
        if isinstance(target, dict):
            key = draw(st.sampled_from(FIELDS + list(target)))
            if target and draw(st.booleans()) and key in target:
                del target[key]
            else:
                target[key] = draw(values)
        elif target:
            i = draw(st.integers(min_value=0, max_value=len(target) - 1))
            action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
            if action == "replace":
                target[i] = draw(values)
            elif action == "delete":
                del target[i]
            else:
                target.append(json.loads(json.dumps(target[i])))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_are_valid_or_refused_with_paths(data: dict[str, Any]) -> None:
    try:
        inv = validate_inventory(data)
    except InventoryError as exc:
        assert exc.problems and all(p.path.startswith("$") and p.rule and p.message for p in exc.problems)
        return
    for cluster in inv.clusters:  # a valid inventory resolves every cluster (VIP-less ones are refused by name)
        try:
            inv.cluster_spec(cluster)
        except InputError as exc:
            assert exc.reason == "VipRequired", exc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_never_crash(raw: bytes) -> None:
    try:
        parse_inventory(raw)
    except InventoryError as exc:
        assert exc.problems


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_byte_flips_of_a_valid_file_never_crash(data: st.DataObject) -> None:
    raw = bytearray(json.dumps(valid_inventory()).encode())
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        parse_inventory(bytes(raw))
    except InventoryError as exc:
        assert exc.problems
