"""Validation of a render before anything is sent: CRD schemas (strict) plus the cross-object invariants.

The schema pass catches what one object's CRD can express (types, required and unknown fields);
the invariants catch what only the whole set and the spec can tell (refs resolve, one VIP, one
version, odd control plane, selectors pin exactly the requested hosts, CRS matches the Cluster,
no leftover template syntax, the CNI pool equals the pod CIDR, no v1beta1/v1beta2 mixing). The
control-plane invariants live in ``validate_control_plane``; this module runs every check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.capi_renderer.cni import check_payload_object, payload_issues
from services.capi_renderer.diffs import arg_fields, walk
from services.capi_renderer.domain import (
    AGENT_NIC_PLACEHOLDER,
    CORE_KINDS,
    DNS1123_LABEL,
    VERSIONED,
    ClusterNames,
    RenderOptions,
    TemplateChoice,
    api_versions,
    get,
)
from services.capi_renderer.render import render_cluster
from services.capi_renderer.selectors import pinned_hosts, selector_matches
from services.capi_renderer.validate_context import CheckContext
from services.capi_renderer.validate_context import RenderIssue as RenderIssue  # noqa: PLC0414 - re-exported
from services.capi_renderer.validate_context import SchemaValidator as SchemaValidator  # noqa: PLC0414 - re-exported
from services.capi_renderer.validate_control_plane import check_control_plane
from shared.errors import InputError
from shared.models import ClusterSpec, version_tuple

_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _schema_pass(ctx: CheckContext, schemas: SchemaValidator | None) -> None:
    for obj in ctx.objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            for path, rule, message in check_payload_object(obj):
                ctx.add(obj, path, rule, message)
        elif schemas is not None:
            for err in schemas.validate(obj, strict=True):
                ctx.add(obj, err.path, f"schema:{err.rule}", err.message)


def _object_set(ctx: CheckContext) -> None:
    n, api = ctx.names, api_versions(ctx.options.core_api_version)
    expected = [
        ("Cluster", n.cluster),
        ("ByoCluster", n.cluster),
        ("KubeadmControlPlane", n.control_plane),
        ("ByoMachineTemplate", ctx.cp_template),
        ("MachineDeployment", n.workers),
        ("KubeadmConfigTemplate", n.workers),
        ("ByoMachineTemplate", ctx.workers_template),
    ]
    if ctx.spec.cni is not None:
        expected += [("ConfigMap", n.cni_configmap), ("ClusterResourceSet", n.crs)]
    seen: dict[tuple[str, str], int] = {}
    for obj in ctx.objects:
        kind, name = str(obj.get("kind")), get(obj, "metadata.name")
        key = (kind, str(name))
        seen[key] = seen.get(key, 0) + 1
        if key not in expected:
            ctx.add(obj, "", "object-set", f"unexpected object {kind}/{name}")
        elif seen[key] == 2:
            ctx.add(obj, "", "object-set", "rendered more than once")
        if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.fullmatch(name):
            ctx.add(obj, "metadata.name", "dns1123", f"name {name!r} is not a DNS-1123 label")
        if get(obj, "metadata.namespace") != ctx.spec.namespace:
            ctx.add(obj, "metadata.namespace", "namespace", f"must be {ctx.spec.namespace!r} like every object")
        want = api.get(kind)
        if want is not None and obj.get("apiVersion") != want:
            ctx.add(
                obj,
                "apiVersion",
                "api-version",
                f"{obj.get('apiVersion')} does not match the render's {want} (v1beta1/v1beta2 must not mix)",
            )
    for kind, name in expected:
        if (kind, name) not in seen:
            ctx.add(f"{kind}/{name}", "", "object-set", "missing from the render")


def _check_ref(ctx: CheckContext, owner: Mapping[str, Any], path: str, want_kind: str) -> None:
    ref = get(owner, path)
    if not isinstance(ref, Mapping):
        ctx.add(owner, path, "ref", "reference missing")
        return
    v2 = str(owner.get("apiVersion", "")).endswith("/v1beta2")
    kind, name = ref.get("kind"), ref.get("name")
    if kind != want_kind:
        ctx.add(owner, f"{path}.kind", "ref", f"must reference a {want_kind}, not {kind!r}")
        return
    target = ctx.find(want_kind, str(name))
    if target is None:
        ctx.add(owner, f"{path}.name", "ref", f"{want_kind}/{name} is not part of the render")
        return
    target_av = str(target.get("apiVersion"))
    if v2:
        if "apiVersion" in ref or "namespace" in ref:
            ctx.add(owner, path, "api-shape", "v1beta2 references carry apiGroup, kind and name only")
        if ref.get("apiGroup") != target_av.rpartition("/")[0]:
            ctx.add(owner, f"{path}.apiGroup", "ref", f"{ref.get('apiGroup')!r} is not the group of {target_av}")
    else:
        if "apiGroup" in ref:
            ctx.add(owner, f"{path}.apiGroup", "api-shape", "apiGroup is a v1beta2 field; v1beta1 uses apiVersion")
        if ref.get("apiVersion") != target_av:
            ctx.add(owner, f"{path}.apiVersion", "ref", f"{ref.get('apiVersion')!r} differs from {target_av}")
        if ref.get("namespace") not in (None, get(target, "metadata.namespace")):
            ctx.add(owner, f"{path}.namespace", "ref", "points to another namespace")


def _refs_and_shapes(ctx: CheckContext) -> None:
    n = ctx.names
    cluster, kcp = ctx.find("Cluster", n.cluster), ctx.find("KubeadmControlPlane", n.control_plane)
    md, crs = ctx.find("MachineDeployment", n.workers), ctx.find("ClusterResourceSet", n.crs)
    if cluster is not None:
        _check_ref(ctx, cluster, "spec.infrastructureRef", "ByoCluster")
        _check_ref(ctx, cluster, "spec.controlPlaneRef", "KubeadmControlPlane")
    if kcp is not None:
        v2 = str(kcp.get("apiVersion")).endswith("/v1beta2")
        right, wrong = (
            ("spec.machineTemplate.spec", "spec.machineTemplate")
            if v2
            else ("spec.machineTemplate", "spec.machineTemplate.spec")
        )
        if get(kcp, f"{wrong}.infrastructureRef") is not None:
            ctx.add(kcp, f"{wrong}.infrastructureRef", "api-shape", f"infrastructureRef belongs under {right}")
        _check_ref(ctx, kcp, f"{right}.infrastructureRef", "ByoMachineTemplate")
        if get(kcp, f"{right}.infrastructureRef.name") != ctx.cp_template:
            ctx.add(kcp, f"{right}.infrastructureRef.name", "ref", f"must be the CP template {ctx.cp_template}")
    if md is not None:
        _check_ref(ctx, md, "spec.template.spec.bootstrap.configRef", "KubeadmConfigTemplate")
        _check_ref(ctx, md, "spec.template.spec.infrastructureRef", "ByoMachineTemplate")
        if get(md, "spec.template.spec.infrastructureRef.name") != ctx.workers_template:
            ctx.add(
                md,
                "spec.template.spec.infrastructureRef.name",
                "ref",
                f"must be the worker template {ctx.workers_template}",
            )
    if crs is not None:
        for i, res in enumerate(get(crs, "spec.resources") or []):
            kind, name = get(res, "kind"), get(res, "name")
            if ctx.find(str(kind), str(name)) is None:
                ctx.add(crs, f"spec.resources[{i}]", "ref", f"{kind}/{name} is not part of the render")
    for obj in ctx.objects:
        if obj.get("kind") == "ByoMachineTemplate" and get(obj, "spec.template.spec.installerRef") is not None:
            ctx.add(
                obj,
                "spec.template.spec.installerRef",
                "no-installer-ref",
                "hosts are prepared over SSH; installerRef must be absent",
            )
        if obj.get("kind") in CORE_KINDS:
            _arg_shapes(ctx, obj)


def _arg_shapes(ctx: CheckContext, obj: Mapping[str, Any]) -> None:
    v2 = str(obj.get("apiVersion")).endswith("/v1beta2")
    want: type = list if v2 else dict
    for path, value in arg_fields(obj):
        if not isinstance(value, want):
            ctx.add(
                obj,
                path,
                "api-shape",
                f"{'v1beta2' if v2 else 'v1beta1'} expects {'a list of {name, value}' if v2 else 'a map'} here",
            )


def _workers(ctx: CheckContext) -> None:
    spec, n = ctx.spec, ctx.names
    md = ctx.find("MachineDeployment", n.workers)
    if md is None:
        return
    replicas = get(md, "spec.replicas")
    if replicas != len(spec.workers) or isinstance(replicas, bool):
        ctx.add(md, "spec.replicas", "replicas", f"{replicas!r} ≠ {len(spec.workers)} worker hosts")
    workers_at = ctx.workers_version or spec.k8s_version
    if get(md, "spec.template.spec.version") != workers_at:
        ctx.add(md, "spec.template.spec.version", "version", f"must be {workers_at}")
    cp, w = version_tuple(spec.k8s_version), version_tuple(workers_at)
    if w > cp or w[0] != cp[0] or cp[1] - w[1] > 1:
        # Workers follow the control plane, one minor version behind at most while it rolls (MachineSet preflight).
        ctx.add(
            md, "spec.template.spec.version", "version-skew", f"{workers_at} with a {spec.k8s_version} control plane"
        )
    v2 = str(md.get("apiVersion")).endswith("/v1beta2")
    strategy = get(md, "spec.rollout.strategy" if v2 else "spec.strategy") or {}
    if get(strategy, "rollingUpdate.maxSurge") != 0 or get(strategy, "rollingUpdate.maxUnavailable") != 1:
        ctx.add(md, "spec.strategy", "rollout", "workers roll with maxSurge 0, maxUnavailable 1 (no spare workers)")
    for path in ("spec.clusterName", "spec.template.spec.clusterName"):
        if get(md, path) != n.cluster:
            ctx.add(md, path, "cluster-name", f"must be {n.cluster}")
    selector, labels = get(md, "spec.selector") or {}, get(md, "spec.template.metadata.labels") or {}
    if isinstance(selector, Mapping) and isinstance(labels, Mapping) and not selector_matches(selector, labels):
        ctx.add(md, "spec.selector", "md-selector", "does not match the template labels")


def _selectors(ctx: CheckContext) -> None:
    spec = ctx.spec
    candidates = [h.host_id for h in spec.all_hosts]
    workers_at = ctx.workers_version or spec.k8s_version
    for name, hosts, version, by_version in (
        (ctx.cp_template, spec.control_plane, spec.k8s_version, not ctx.templates.control_plane_legacy),
        (ctx.workers_template, spec.workers, workers_at, not ctx.templates.workers_legacy),
    ):
        bmt = ctx.find("ByoMachineTemplate", name)
        if bmt is None:
            continue
        selector = get(bmt, "spec.template.spec.selector")
        if not isinstance(selector, Mapping):
            ctx.add(bmt, "spec.template.spec.selector", "selector", "missing: any free host could be claimed")
            continue
        chosen, stray = pinned_hosts(selector, candidates, version, by_version=by_version)
        want = {h.host_id for h in hosts}
        if chosen != want or stray:
            extra = sorted(chosen - want) + (["<other hosts>"] if stray else [])
            ctx.add(
                bmt,
                "spec.template.spec.selector",
                "selector",
                f"must pin exactly {sorted(want)} at {version}; misses {sorted(want - chosen)}, also takes {extra}",
            )


def _network_and_cni(ctx: CheckContext) -> None:
    spec, n = ctx.spec, ctx.names
    cluster, crs = ctx.find("Cluster", n.cluster), ctx.find("ClusterResourceSet", n.crs)
    if cluster is not None:
        for key, want in (("pods", spec.pod_cidr), ("services", spec.service_cidr)):
            if get(cluster, f"spec.clusterNetwork.{key}.cidrBlocks") != [want]:
                ctx.add(cluster, f"spec.clusterNetwork.{key}.cidrBlocks", "network", f"must be [{want}]")
        endpoint = get(cluster, "spec.controlPlaneEndpoint.host")
        if endpoint not in (None, "", spec.endpoint):
            ctx.add(cluster, "spec.controlPlaneEndpoint.host", "vip", "must be unset or the control-plane endpoint")
    if crs is not None and cluster is not None:
        selector = get(crs, "spec.clusterSelector") or {}
        labels = get(cluster, "metadata.labels") or {}
        if not (get(selector, "matchLabels") or get(selector, "matchExpressions")):
            ctx.add(crs, "spec.clusterSelector", "crs-selector", "an empty selector selects no cluster")
        elif not selector_matches(selector, labels if isinstance(labels, Mapping) else {}):
            ctx.add(crs, "spec.clusterSelector", "crs-selector", "is not satisfied by the Cluster's labels")
    for obj in ctx.objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            for path, rule, message in payload_issues(obj, spec.pod_cidr):
                ctx.add(obj, path, rule, message)


def _leftovers(ctx: CheckContext) -> None:
    for obj in ctx.objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            continue  # CRS payloads are applied verbatim to the workload cluster; their syntax is theirs
        for path, value in walk(obj):
            if not isinstance(value, str):
                continue
            if _PLACEHOLDER.search(value):
                ctx.add(obj, path, "placeholder", f"leftover {_PLACEHOLDER.search(value).group()}")  # type: ignore[union-attr]
            rest = value.replace(AGENT_NIC_PLACEHOLDER, "")
            if "{{" in rest or "}}" in rest:
                rule = "go-template" if ".files[" in path else "template-leftover"
                ctx.add(obj, path, rule, f"only {AGENT_NIC_PLACEHOLDER} may contain {{{{ }}}}")


_CHECKS: tuple[Callable[[CheckContext], None], ...] = (
    _object_set,
    _refs_and_shapes,
    check_control_plane,
    _workers,
    _selectors,
    _network_and_cni,
    _leftovers,
)


def validate_render(
    objects: Sequence[Mapping[str, Any]],
    spec: ClusterSpec,
    schemas: SchemaValidator | None,
    options: RenderOptions,
    workers_version: str | None = None,
    templates: TemplateChoice = VERSIONED,
) -> list[RenderIssue]:
    """Every issue of a render: strict CRD schema errors (when ``schemas`` is given) and invariants."""
    ctx = CheckContext(
        objects, spec, options, ClusterNames(spec.name), [], workers_version or spec.k8s_version, templates
    )
    _schema_pass(ctx, schemas)
    for check in _CHECKS:
        check(ctx)
    return ctx.issues


def raise_for_issues(spec: ClusterSpec, issues: Sequence[RenderIssue]) -> None:
    if issues:
        lines = "; ".join(str(i) for i in issues)
        raise InputError(
            f"render of cluster {spec.name} has {len(issues)} issue(s): {lines}",
            path=f"{issues[0].object} {issues[0].path}".strip(),
            reason="InvalidRender",
        )


def render_and_validate(
    spec: ClusterSpec,
    options: RenderOptions,
    schemas: SchemaValidator | None,
    workers_version: str | None = None,
    templates: TemplateChoice = VERSIONED,
) -> list[dict[str, Any]]:
    """Render and validate; raise ``InputError`` listing every issue, so nothing invalid is ever sent."""
    objects = render_cluster(spec, options, workers_version, templates)
    raise_for_issues(spec, validate_render(objects, spec, schemas, options, workers_version, templates))
    return objects
