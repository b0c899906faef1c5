"""Rendering a ``ClusterSpec`` into the BYOH Cluster API objects with Jinja2 templates.

The templates give the objects their shape; every value reaches them through one of two filters,
so no input can change the YAML structure:

- ``q``: JSON (a subset of YAML) with the few characters YAML reads differently escaped;
- ``block(col)``: a literal block scalar with an explicit indentation indicator and the chomping
  that keeps the text byte-for-byte (used for the kube-vip static pod and the CNI manifest).

The Jinja environment and its compiled templates are built once per process (on first use).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.capi_renderer import cni
from services.capi_renderer.domain import (
    ADMIN_CONF,
    AGENT_NIC_PLACEHOLDER,
    CRS_LABEL,
    FIELD_MANAGER,
    KUBE_VIP_PATH,
    KUBEADM_INIT_MARKER,
    SUPER_ADMIN_CONF,
    VERSIONED,
    ClusterNames,
    RenderOptions,
    TemplateChoice,
    api_versions,
    control_plane_max_surge,
    uses_super_admin,
)
from services.capi_renderer.selectors import host_selector
from shared.errors import InputError
from shared.models import ClusterSpec
from shared.objects import CLUSTER_LABEL, CLUSTER_NAME_LABEL, DEPLOYMENT_NAME_LABEL, MANAGED_BY_LABEL

TEMPLATES = Path(__file__).resolve().parent / "templates"
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Characters JSON leaves raw but YAML would read differently inside a double-quoted scalar:
# C1 controls and DEL are not printable in YAML; NEL, LS and PS are YAML line breaks (folded);
# a BOM and lone surrogates cannot appear in a YAML stream.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


def yaml_value(value: Any) -> str:
    """Render a scalar, list or mapping as a single-line YAML flow value that parses back to ``value``."""
    if isinstance(value, float):
        # PyYAML (YAML 1.1) reads JSON's ``1e5`` as a string; the renderer never needs floats.
        raise TypeError("floats are not rendered; use int or str")
    text = json.dumps(value, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@functools.lru_cache(maxsize=32)
def literal_block(text: str, key_column: int) -> str:
    """A literal block scalar for a mapping value whose key starts at ``key_column``.

    The explicit indentation indicator keeps leading spaces of the first line; the chomping
    indicator keeps the trailing newlines exactly. Text with characters a block cannot carry
    verbatim is refused (the CNI loader normalises or rejects such files earlier). Cached: the
    CNI manifest is the same string object render after render, so a hit costs nothing.
    """
    bad = cni.NOT_BLOCK_SAFE.search(text)
    if bad:
        raise ValueError(f"character U+{ord(bad.group()):04X} cannot be carried in a YAML literal block")
    if not text.endswith("\n"):
        chomp = "-"
    elif text.endswith("\n\n") or text == "\n":
        chomp = "+"
    else:
        chomp = ""
    pad = " " * (key_column + 2)
    body = "\n".join(pad + line if line else "" for line in text.split("\n"))
    body = body.removesuffix("\n")  # the template's own newline after the filter ends the last line
    return f"|2{chomp}\n{body}"


def _arg_value(args: Mapping[str, str], v1beta2: bool) -> str:
    # v1beta1 takes component arguments as a map, v1beta2 as a list of {name, value}.
    if v1beta2:
        return yaml_value([{"name": k, "value": v} for k, v in sorted(args.items())])
    return yaml_value(dict(sorted(args.items())))


@functools.cache
def environment() -> Environment:
    """The process-wide template environment (templates compile once and stay cached)."""
    # autoescape is for HTML; this output is YAML, made safe by the q/block filters instead.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["q"] = yaml_value
    env.filters["block"] = literal_block
    env.filters["args"] = _arg_value
    return env


def super_admin_commands() -> tuple[str, str]:
    """The pre/post kubeadm commands that let kube-vip use super-admin.conf while ``kubeadm init`` runs.

    ``if … fi`` rather than ``[ … ] && …``: the agent stops at the first command that exits non-zero,
    and on joining nodes the guard is false.
    """

    def swap(src: str, dst: str) -> str:
        return f"if [ -f {KUBEADM_INIT_MARKER} ]; then sed -i 's#path: {src}#path: {dst}#' {KUBE_VIP_PATH}; fi"

    return swap(ADMIN_CONF, SUPER_ADMIN_CONF), swap(SUPER_ADMIN_CONF, ADMIN_CONF)


def cni_manifest(spec: ClusterSpec, options: RenderOptions) -> cni.CniManifest | None:
    """The CNI manifest the spec asks for, or None; an unknown CNI name is an input error."""
    if spec.cni is None:
        return None
    path = options.cni_manifests.get(spec.cni)
    if path is None:
        known = ", ".join(sorted(options.cni_manifests)) or "none configured"
        raise InputError(f"unknown CNI {spec.cni!r} (known: {known})", path="cni", reason="UnknownCni")
    return cni.load_manifest(spec.cni, path).for_pod_cidr(spec.pod_cidr)


def _kube_vip_manifest(spec: ClusterSpec, options: RenderOptions) -> str:
    """The kube-vip static pod that holds the cluster's VIP on the control-plane hosts."""
    assert spec.vip is not None
    duration, renew, retry = options.vip_lease_seconds
    return (
        environment()
        .get_template("kube-vip.yaml.j2")
        .render(
            image=options.kube_vip_image,
            vip=spec.vip,
            vip_cidr="128" if ":" in spec.vip else "32",
            port=str(options.control_plane_port),
            nic=AGENT_NIC_PLACEHOLDER,
            lease=(str(duration), str(renew), str(retry)),
        )
    )


def _context(
    spec: ClusterSpec,
    options: RenderOptions,
    workers_version: str | None = None,
    templates: TemplateChoice = VERSIONED,
) -> dict[str, Any]:
    names = ClusterNames(spec.name)
    workers_at = workers_version or spec.k8s_version
    cp_template, cp_selector_version = templates.control_plane(names, spec.k8s_version)
    workers_template, workers_selector_version = templates.workers(names, workers_at)
    v2 = options.core_api_version == "v1beta2"
    api = api_versions(options.core_api_version)

    def ref(kind: str, name: str) -> dict[str, str]:
        group, _, _ = api[kind].rpartition("/")
        if v2:
            return {"apiGroup": group, "kind": kind, "name": name}
        return {"apiVersion": api[kind], "kind": kind, "name": name}

    manifest = cni_manifest(spec, options)
    labels = {**options.extra_labels, MANAGED_BY_LABEL: FIELD_MANAGER, CLUSTER_LABEL: spec.name}
    crs_selector = {CRS_LABEL: names.crs}
    pre, post = super_admin_commands()
    kube_vip = _kube_vip_manifest(spec, options) if spec.vip is not None else None
    return {
        "v2": v2,
        "api": api,
        "ref": ref,
        "names": names,
        "namespace": spec.namespace,
        "labels": labels,
        "cluster_labels": {**labels, **crs_selector} if manifest else labels,
        "crs_selector": crs_selector,
        "md_labels": {CLUSTER_NAME_LABEL: spec.name, DEPLOYMENT_NAME_LABEL: names.workers},
        "version": spec.k8s_version,
        "workers_version": workers_at,
        "cp_template": cp_template,
        "workers_template": workers_template,
        "cp_max_surge": control_plane_max_surge(len(spec.control_plane)),
        "endpoint": spec.endpoint,
        "port": options.control_plane_port,
        "pod_cidr": spec.pod_cidr,
        "service_cidr": spec.service_cidr,
        "service_domain": options.service_domain,
        "cp_replicas": len(spec.control_plane),
        "worker_replicas": len(spec.workers),
        "cp_selector": host_selector([h.host_id for h in spec.control_plane], cp_selector_version),
        "worker_selector": host_selector([h.host_id for h in spec.workers], workers_selector_version),
        "cert_sans": [spec.endpoint],
        "controller_manager_args": options.controller_manager_args,
        "kubelet_extra_args": options.kubelet_extra_args,
        "cri_socket": options.cri_socket,
        "preflight": list(options.ignore_preflight_errors),
        "kube_vip_path": KUBE_VIP_PATH,
        "kube_vip_manifest": kube_vip,
        # The swap exists for kube-vip only: without a VIP there is nothing to give super-admin.conf to.
        "super_admin": kube_vip is not None and uses_super_admin(spec.k8s_version),
        "pre_commands": [pre],
        "post_commands": [post],
        "cni": manifest,
    }


def render_yaml(
    spec: ClusterSpec,
    options: RenderOptions,
    workers_version: str | None = None,
    templates: TemplateChoice = VERSIONED,
) -> str:
    """The cluster's objects as one multi-document YAML text (what ``render_cluster`` parses).

    ``workers_version``: the MachineDeployment (and its machine template) at that version instead of the
    spec's, as an upgrade's control-plane step leaves the workers. ``templates``: which roles keep a live
    legacy (unversioned) machine template."""
    return environment().get_template("bundle.yaml.j2").render(_context(spec, options, workers_version, templates))


#: Documents at least this large (in practice the CNI ConfigMap) are parsed once and then copied.
_PARSE_CACHE_MIN = 16 * 1024


def load_yaml(text: str) -> Any:
    """One YAML document with the safe loader (C-accelerated when available)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is SafeLoader or CSafeLoader


_load_large = functools.lru_cache(maxsize=16)(load_yaml)


def parse_rendered(text: str) -> list[dict[str, Any]]:
    """Parse ``render_yaml`` output into objects (empty documents dropped).

    Rendered text has ``---`` lines only as document separators (block content is indented and
    every other value is a one-line JSON scalar), so it can be split before parsing, and a large
    document that repeats from render to render is parsed once.
    """
    out: list[dict[str, Any]] = []
    parts = text.split("\n---\n")
    for i, part in enumerate(parts):
        # The newline consumed by the split ends the document's last line (a block's, too).
        doc = part if i == len(parts) - 1 else part + "\n"
        parsed = copy.deepcopy(_load_large(doc)) if len(doc) >= _PARSE_CACHE_MIN else load_yaml(doc)
        if parsed is not None:
            out.append(parsed)
    return out


def render_cluster(
    spec: ClusterSpec,
    options: RenderOptions,
    workers_version: str | None = None,
    templates: TemplateChoice = VERSIONED,
) -> list[dict[str, Any]]:
    """Render the BYOH cluster objects for ``spec`` (not yet validated: see ``validate.render_and_validate``).

    Blocking only for the first read of a CNI manifest file; otherwise pure CPU work of a few ms.
    """
    return parse_rendered(render_yaml(spec, options, workers_version, templates))
