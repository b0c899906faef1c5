"""The inventory model: backward compatibility, every validation rule (path + rule), hostile input, schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.inventory import InventoryError, inventory_json_schema, load_inventory, parse_inventory, validate_inventory
from tests.unit.focom.conftest import valid_inventory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "input.json"
Mutation = Callable[[dict[str, Any]], Any]


def problems_of(data: Any, **kw: Any) -> set[tuple[str, str]]:
    with pytest.raises(InventoryError) as err:
        validate_inventory(data, **kw)
    assert err.value.problems, "an InventoryError always lists its problems"
    assert err.value.path == err.value.problems[0].path
    return {(p.path, p.rule) for p in err.value.problems}


def test_users_existing_format_is_accepted() -> None:
    # The format users already have: numbered hosts, passwords, no optional field at all.
    legacy = {
        "k8s_version": "1.30.2",
        "hosts": [
            {
                "host_id": 1,
                "host_name": "master-1",
                "host_ip": "192.168.10.11",
                "host_user": "ubuntu",
                "host_pwd": "ubuntu123",
            },
            {
                "host_id": 2,
                "host_name": "worker-1",
                "host_ip": "192.168.10.12",
                "host_user": "ubuntu",
                "host_pwd": "ubuntu123",
            },
        ],
        "clusters": [{"cluster_name": "smo", "cluster_masters": [{"host_id": 1}], "cluster_workers": [{"host_id": 2}]}],
    }
    inv = validate_inventory(legacy)
    assert inv.hosts[0].host_id == "1" and inv.clusters[0].master_ids == ["1"]
    assert inv.k8s_version == "v1.30.2" and inv.namespace == "default"
    assert "ubuntu123" not in repr(inv) and "ubuntu123" not in inv.model_dump_json()
    key, password = inv.credentials("1")
    assert key is None and password is not None and password.get_secret_value() == "ubuntu123"


def test_example_inventory_is_valid_and_resolves_to_specs() -> None:
    inv = load_inventory(EXAMPLE)
    specs = [inv.cluster_spec(c) for c in inv.clusters]
    assert [s.name for s in specs] == ["smo", "ran", "edge"]
    ran = specs[1]
    assert len(ran.control_plane) == 3 and ran.vip == "10.10.0.202" and ran.pod_cidr == "192.168.0.0/16"
    assert specs[2].k8s_version == "v1.30.8" and specs[2].control_plane[0].ssh_port == 2222
    assert specs[0].control_plane[0].ssh_user == "ubuntu"
    # Credentials never reach the spec.
    assert "id_ed25519" not in specs[0].model_dump_json()


def test_cni_absent_means_default_and_null_means_none(inventory_data: dict[str, Any]) -> None:
    inventory_data["clusters"][1]["cni"] = None
    inv = validate_inventory(inventory_data)
    assert inv.cluster_spec(inv.clusters[0], default_cni="flannel").cni == "flannel"
    assert inv.cluster_spec(inv.clusters[1], default_cni="flannel").cni is None


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


RULES: list[tuple[str, Mutation, str, str]] = [
    ("missing version", _delete(["k8s_version"]), "$.k8s_version", "required"),
    ("missing hosts", _delete(["hosts"]), "$.hosts", "required"),
    ("unknown field", _set(["hosts", 0, "hostip"], "x"), "$.hosts[0].hostip", "unknown-field"),
    ("host name not dns", _set(["hosts", 1, "host_name"], "Node_1"), "$.hosts[1].host_name", "dns1123"),
    ("host name too long", _set(["hosts", 1, "host_name"], "a" * 64), "$.hosts[1].host_name", "dns1123"),
    ("cluster name not dns", _set(["clusters", 0, "cluster_name"], "SMO"), "$.clusters[0].cluster_name", "dns1123"),
    ("cluster name > 40", _set(["clusters", 0, "cluster_name"], "c" * 41), "$.clusters[0].cluster_name", "dns1123"),
    ("namespace not dns", _set(["namespace"], "Prod"), "$.namespace", "dns1123"),
    ("host id syntax", _set(["hosts", 2, "host_id"], "-bad"), "$.hosts[2].host_id", "label-value"),
    ("host id negative", _set(["hosts", 2, "host_id"], -1), "$.hosts[2].host_id", "type"),
    ("bad ip", _set(["hosts", 0, "host_ip"], "10.0.0.300"), "$.hosts[0].host_ip", "ip-address"),
    ("bad user", _set(["hosts", 0, "host_user"], "root;id"), "$.hosts[0].host_user", "linux-user"),
    ("port range", _set(["hosts", 0, "ssh_port"], 70000), "$.hosts[0].ssh_port", "range"),
    ("port as bool", _set(["hosts", 0, "ssh_port"], True), "$.hosts[0].ssh_port", "type"),
    ("label key", _set(["hosts", 0, "labels"], {"bad key": "v"}), "$.hosts[0].labels", "label-key"),
    ("label value", _set(["hosts", 0, "labels"], {"zone": "a b"}), "$.hosts[0].labels", "label-value"),
    ("key file newline", _set(["hosts", 0, "ssh_key_file"], "/k\n"), "$.hosts[0].ssh_key_file", "path"),
    ("version syntax", _set(["k8s_version"], "1.30"), "$.k8s_version", "k8s-version"),
    ("version too old", _set(["k8s_version"], "v1.28.9"), "$.k8s_version", "k8s-window"),
    (
        "cluster version too new",
        _set(["clusters", 0, "k8s_version"], "1.37.0"),
        "$.clusters[0].k8s_version",
        "k8s-window",
    ),
    ("duplicate host id", _set(["hosts", 1, "host_id"], "h1"), "$.hosts[1].host_id", "unique"),
    ("duplicate host name", _set(["hosts", 1, "host_name"], "node-1"), "$.hosts[1].host_name", "unique"),
    ("duplicate host ip", _set(["hosts", 1, "host_ip"], "10.0.0.1"), "$.hosts[1].host_ip", "unique"),
    ("duplicate cluster", _set(["clusters", 1, "cluster_name"], "smo"), "$.clusters[1].cluster_name", "unique"),
    (
        "unknown host",
        _set(["clusters", 0, "cluster_workers", 0, "host_id"], "h99"),
        "$.clusters[0].cluster_workers[0].host_id",
        "host-exists",
    ),
    (
        "host in two clusters",
        _set(["clusters", 1, "cluster_workers", 0, "host_id"], "h2"),
        "$.clusters[1].cluster_workers[0].host_id",
        "host-in-two-clusters",
    ),
    (
        "host in two roles",
        _set(["clusters", 0, "cluster_workers", 0, "host_id"], "h1"),
        "$.clusters[0].cluster_workers[0].host_id",
        "host-in-two-roles",
    ),
    (
        "even control plane",
        _set(["clusters", 1, "cluster_masters"], [{"host_id": "h3"}, {"host_id": "h4"}]),
        "$.clusters[1].cluster_masters",
        "cp-count",
    ),
    ("no control plane", _set(["clusters", 0, "cluster_masters"], []), "$.clusters[0].cluster_masters", "cp-count"),
    (
        "vip required",
        _delete(["clusters", 1, "control_plane_endpoint"]),
        "$.clusters[1].control_plane_endpoint",
        "vip-required",
    ),
    (
        "vip invalid",
        _set(["clusters", 0, "control_plane_endpoint"], "vip"),
        "$.clusters[0].control_plane_endpoint",
        "ip-address",
    ),
    (
        "vip is a host",
        _set(["clusters", 0, "control_plane_endpoint"], "10.0.0.7"),
        "$.clusters[0].control_plane_endpoint",
        "vip-not-host",
    ),
    (
        "vip shared",
        _set(["clusters", 1, "control_plane_endpoint"], "10.0.1.1"),
        "$.clusters[1].control_plane_endpoint",
        "unique",
    ),
    ("cidr syntax", _set(["clusters", 0, "pod_cidr"], "10.244.0.1/16"), "$.clusters[0].pod_cidr", "cidr"),
    ("cidrs overlap", _set(["clusters", 0, "pod_cidr"], "10.96.0.0/16"), "$.clusters[0].pod_cidr", "cidr-overlap"),
    (
        "cidr holds a host",
        _set(["clusters", 0, "service_cidr"], "10.0.0.0/24"),
        "$.clusters[0].service_cidr",
        "cidr-contains-host",
    ),
    (
        "default cidr holds a host",
        _set(["hosts", 0, "host_ip"], "10.244.3.3"),
        "$.clusters[0].pod_cidr",
        "cidr-contains-host",
    ),
    (
        "cidr holds the vip",
        _set(["clusters", 0, "pod_cidr"], "10.0.1.0/24"),
        "$.clusters[0].pod_cidr",
        "cidr-contains-host",
    ),
    ("cni syntax", _set(["clusters", 0, "cni"], "Calico!"), "$.clusters[0].cni", "dns1123"),
    ("schema version", _set(["schema_version"], 2), "$.schema_version", "enum"),
    ("hosts not a list", _set(["hosts"], {"h1": {}}), "$.hosts", "type"),
    ("cluster not an object", _set(["clusters", 0], "smo"), "$.clusters[0]", "type"),
]


@pytest.mark.parametrize(("case", "mutate", "path", "rule"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_names_path_and_rule(case: str, mutate: Mutation, path: str, rule: str) -> None:
    data = valid_inventory()
    validate_inventory(data)  # the base is valid: the mutation alone breaks it
    mutate(data)
    assert (path, rule) in problems_of(data)


def test_all_problems_reported_together() -> None:
    data = valid_inventory()
    data["hosts"][0]["host_ip"] = "nope"
    data["hosts"][1]["host_name"] = "BAD"
    data["clusters"][0]["cluster_workers"][0]["host_id"] = "h99"
    data["clusters"][1]["cluster_masters"] = [{"host_id": "h3"}, {"host_id": "h4"}]
    data["k8s_version"] = "v1.10.0"
    found = problems_of(data)
    assert {
        ("$.hosts[0].host_ip", "ip-address"),
        ("$.hosts[1].host_name", "dns1123"),
        ("$.clusters[0].cluster_workers[0].host_id", "host-exists"),
        ("$.clusters[1].cluster_masters", "cp-count"),
        ("$.k8s_version", "k8s-window"),
    } <= found


def test_window_is_a_parameter(inventory_data: dict[str, Any]) -> None:
    inventory_data["k8s_version"] = "v1.27.1"
    assert ("$.k8s_version", "k8s-window") in problems_of(inventory_data)
    assert validate_inventory(inventory_data, window=((1, 27), (1, 31))).k8s_version == "v1.27.1"


def test_password_never_in_errors(inventory_data: dict[str, Any]) -> None:
    inventory_data["hosts"][0]["host_pwd"] = 12345678
    inventory_data["hosts"][1]["host_pwd"] = "hunter2-secret"
    inventory_data["hosts"][1]["host_name"] = "Bad Name"
    with pytest.raises(InventoryError) as err:
        validate_inventory(inventory_data)
    assert "12345678" not in str(err.value) and "hunter2-secret" not in str(err.value)


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not utf-8", b'{"k8s_version": "\xff\xfe"}', "encoding"),
    ("not json", b"{hosts: []}", "json-syntax"),
    ("NaN", b'{"k8s_version": NaN}', "json-syntax"),
    ("huge integer", b'{"hosts": [{"host_id": ' + b"9" * 5000 + b"}]}", "json-syntax"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "max-depth"),
    ("moderately deep", b'{"hosts": ' + b"[" * 40 + b"]" * 40 + b"}", "max-depth"),
    ("duplicate key", b'{"k8s_version": "1.30.1", "k8s_version": "1.31.1", "hosts": []}', "duplicate-key"),
    ("top level array", b"[]", "type"),
    ("empty", b"", "json-syntax"),
    (
        "injection in a name",
        json.dumps(
            {"k8s_version": "1.30.1", "hosts": [{"host_id": "h1", "host_name": "n1; rm -rf /", "host_ip": "10.0.0.1"}]}
        ).encode(),
        "dns1123",
    ),
    (
        "template injection",
        json.dumps(
            {"k8s_version": "1.30.1", "hosts": [], "clusters": [{"cluster_name": "{{ 7*7 }}", "cluster_masters": []}]}
        ).encode(),
        "dns1123",
    ),
    (
        "subject injection",
        json.dumps(
            {"k8s_version": "1.30.1", "hosts": [{"host_id": "h1.>", "host_name": "n1", "host_ip": "10.0.0.1"}]}
        ).encode(),
        "label-value",
    ),
]


@pytest.mark.parametrize(("case", "raw", "rule"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_are_refused_with_a_rule(case: str, raw: bytes, rule: str) -> None:
    with pytest.raises(InventoryError) as err:
        parse_inventory(raw)
    assert rule in {p.rule for p in err.value.problems}
    assert all(p.path.startswith("$") for p in err.value.problems)


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "input.json"
    big.write_bytes(b" " * 5000 + EXAMPLE.read_bytes())
    with pytest.raises(InventoryError) as err:
        load_inventory(big, max_bytes=4096)
    assert [(p.path, p.rule) for p in err.value.problems] == [("$", "file-size")]
    with pytest.raises(InventoryError, match="file"):
        load_inventory(tmp_path / "absent.json")
    assert load_inventory(big).clusters


def test_bom_is_accepted() -> None:
    assert parse_inventory(b"\xef\xbb\xbf" + EXAMPLE.read_bytes()).clusters


def test_json_schema_describes_the_model() -> None:
    schema = inventory_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(json.loads(EXAMPLE.read_text()))
    legacy = valid_inventory()
    legacy["hosts"][0]["host_id"] = 7  # numbered hosts stay valid in editors too
    legacy["clusters"][0]["cluster_masters"][0]["host_id"] = 7
    validator.validate(legacy)
    for mutate in (
        _set(["hosts", 0, "host_name"], "Bad_Name"),
        _set(["hosts", 0, "extra"], 1),
        _set(["clusters", 0, "cluster_name"], "x" * 41),
        _delete(["k8s_version"]),
        _set(["hosts", 0, "host_ip"], "not-an-ip"),
    ):
        data = valid_inventory()
        mutate(data)
        assert list(validator.iter_errors(data)), f"schema accepted {data}"
    props = schema["$defs"]["InventoryHost"]["properties"]
    expected = {"host_id", "host_name", "host_ip", "host_user", "host_pwd", "ssh_port", "ssh_key_file", "labels"}
    assert expected <= set(props)
