"""The rendered Roles/ClusterRoles are exactly the RBAC table of docs/deploy.md, for several value sets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.chart import (
    CHART,
    COMPONENTS,
    FULL_VALUES,
    NAMESPACE,
    RELEASE,
    REPO,
    load_values,
    merge,
    production_values,
    render,
)

DOC = REPO / "docs" / "deploy.md"
MODULE_TO_KEY = {
    "focom": "focom",
    "o2ims": "o2ims",
    "hostprep": "hostprep",
    "capi_renderer": "capiRenderer",
    "status_watcher": "statusWatcher",
}
Grant = tuple[str, str, str, str, frozenset[str]]  # service key, scope, apiGroup, resource, verbs


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]*)`", text)


def doc_table() -> list[dict[str, Any]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if _cells(line)[:3] == ["service", "apiGroup", "resources"])
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        service, group, resources, verbs, scope, when = _cells(line)
        (api_group,) = _ticked(group)
        rows.append(
            {
                "service": MODULE_TO_KEY[service],
                "apiGroup": "" if api_group == '""' else api_group,
                "resources": _ticked(resources),
                "verbs": frozenset(v.strip() for v in verbs.split(",")),
                "scope": _ticked(scope)[0] if _ticked(scope) else scope,
                "when": _ticked(when),
            }
        )
    assert rows, "the RBAC table of docs/deploy.md is empty"
    return rows


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _holds(values: dict[str, Any], condition: str) -> bool:
    path, eq, wanted = condition.partition("=")
    actual = _lookup(values, path)
    if not eq:
        return bool(actual)
    wanted = "" if wanted == '""' else wanted
    return (actual or "") == wanted


def expected_grants(values: dict[str, Any]) -> set[Grant]:
    merged = merge(load_values(CHART / "values.yaml"), values)
    grants: set[Grant] = set()
    for row in doc_table():
        key = row["service"]
        if not merged["services"][key]["enabled"] or not all(_holds(merged, c) for c in row["when"]):
            continue
        if row["scope"] == "cluster":
            scopes = ["cluster"]
        else:
            named = _lookup(merged, row["scope"]) or []
            named = [named] if isinstance(named, str) else list(named)
            if row["scope"] == "managementCluster.namespaces" and not named:
                # Unlisted: the release namespace, unless every namespace is asked for explicitly.
                named = [] if merged["managementCluster"].get("allNamespaces") else [NAMESPACE]
            scopes = [f"namespace:{ns}" for ns in named] or ["cluster"]
        for scope in scopes:
            for resource in row["resources"]:
                grants.add((key, scope, row["apiGroup"], resource, row["verbs"]))
    return grants


def rendered_grants(values: dict[str, Any]) -> set[Grant]:
    r = render(values)
    by_account = {f"{RELEASE}-focom-o2ims-{component}": key for key, component in COMPONENTS.items()}
    roles = {("ClusterRole", o["metadata"]["name"], None): o for o in r.of_kind("ClusterRole")}
    roles |= {("Role", o["metadata"]["name"], o["metadata"]["namespace"]): o for o in r.of_kind("Role")}
    grants: list[Grant] = []
    bound: set[tuple[str, str, str | None]] = set()
    for binding in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding"):
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role_key = (ref["kind"], ref["name"], namespace if ref["kind"] == "Role" else None)
        assert role_key in roles, f"{binding['metadata']['name']} binds a role the chart does not render"
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NAMESPACE
        key = by_account[subject["name"]]
        bound.add(role_key)
        scope = "cluster" if ref["kind"] == "ClusterRole" else f"namespace:{namespace}"
        for rule in roles[role_key]["rules"]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames/nonResourceURLs expected"
            assert len(set(rule["verbs"])) == len(rule["verbs"])
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.append((key, scope, group, resource, frozenset(rule["verbs"])))
    assert set(roles) == bound, f"roles nobody is bound to: {set(roles) - bound}"
    assert len(grants) == len(set(grants)), "a resource is granted twice"
    return set(grants)


SCENARIOS = {
    "default": {},
    "production": None,
    "full": FULL_VALUES,
    "external-management": {"managementCluster": {"kubeconfigSecret": "mgmt"}},
    "files-crds-no-crs": {
        "services": {
            "capiRenderer": {"settings": {"crd_source": "files"}},
            "focom": {"watchCRs": False},
            "o2ims": {"mirror": {"enabled": True}},
        }
    },
    "disabled-service": {"services": {"statusWatcher": {"enabled": False}}},
    "all-namespaces": {"managementCluster": {"allNamespaces": True}},
    "no-rbac": {"rbac": {"create": False}},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_rbac_is_exactly_the_documented_set(scenario: str) -> None:
    values = production_values() if scenario == "production" else SCENARIOS[scenario]
    actual = rendered_grants(values)
    expected = set() if scenario == "no-rbac" else expected_grants(values)
    assert actual == expected, (
        f"rendered but not documented: {sorted(actual - expected, key=str)}\n"
        f"documented but not rendered: {sorted(expected - actual, key=str)}"
    )


def test_status_watcher_never_writes_and_everyone_reads_narrowly() -> None:
    for grant in expected_grants(FULL_VALUES) | expected_grants({}):
        key, _, _, resource, verbs = grant
        if key == "statusWatcher":
            assert verbs <= {"get", "list", "watch"}, grant
        if resource == "secrets":
            assert key == "statusWatcher" and verbs == {"get", "list", "watch"}


def test_by_default_nothing_reaches_beyond_the_release_namespace() -> None:
    """No list/watch/write of namespaced resources cluster-wide unless allNamespaces is set explicitly."""
    for values in ({}, {"managementCluster": {"namespaces": []}}):
        wide = {
            g
            for g in rendered_grants(values)
            if g[1] == "cluster" and g[0] in ("hostprep", "capiRenderer", "statusWatcher")
        }
        assert {g[3] for g in wide} <= {"customresourcedefinitions"}, wide
        secrets = {g[1] for g in rendered_grants(values) if g[3] == "secrets"}
        assert secrets == {f"namespace:{NAMESPACE}"}
    env = render().env("statusWatcher")
    assert env["O2_STATUS_WATCHER_NAMESPACES"]["value"] == NAMESPACE


def test_the_comparison_notices_an_extra_verb() -> None:
    expected = expected_grants({})
    tampered = {(k, s, g, r, v | {"update"}) if r == "byohosts" else (k, s, g, r, v) for k, s, g, r, v in expected}
    assert tampered != expected and rendered_grants({}) != tampered
