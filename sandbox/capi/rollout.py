"""Rollout rules of the simulated KCP and MachineDeployment controllers (pure functions, no I/O).

A KubeadmControlPlane Machine is outdated when its ``spec.version`` differs from the KCP's or its
ByoMachine was cloned from another template than the one ``machineTemplate.infrastructureRef`` now
names; KCP then replaces Machines one at a time: with ``maxSurge: 1`` (the default) a new Machine
first, with ``maxSurge: 0`` the oldest outdated one first. A MachineDeployment whose template changed
gets a new MachineSet (the sandbox has no MachineSet kind: a set is the Machines sharing a
``machine-template-hash`` label) and moves Machines over at the pace of
``strategy.rollingUpdate.{maxSurge,maxUnavailable}``, as CAPI's rolling MachineDeployment does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.capi.shapes import Obj, ref_name
from shared.objects import dig

#: What CAPI copies onto a Machine's infrastructure object: the template it was cloned from.
CLONED_FROM_NAME_ANNOTATION = "cluster.x-k8s.io/cloned-from-name"
CLONED_FROM_GROUPKIND_ANNOTATION = "cluster.x-k8s.io/cloned-from-groupkind"
#: The label that ties a worker Machine to the MachineSet of one MachineDeployment template.
TEMPLATE_HASH_LABEL = "machine-template-hash"
SET_NAME_LABEL = "cluster.x-k8s.io/set-name"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]


def parse_version(text: Any) -> Version | None:
    """``v1.31.2`` (or ``1.31.2``, with any pre-release/build suffix) as (1, 31, 2); None when not a version."""
    m = _VERSION.match(str(text or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def same_version(a: Any, b: Any) -> bool:
    pa, pb = parse_version(a), parse_version(b)
    return pa is not None and pa == pb


def lowest_version(versions: Iterable[Any]) -> str | None:
    """The lowest of the versions (as written, e.g. ``v1.30.2``), None when there is none."""
    parsed = [(p, str(v)) for v in versions if (p := parse_version(v)) is not None]
    return min(parsed)[1] if parsed else None


def version_counts(machines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``status.versions`` as CAPI shapes it: one entry per Machine ``spec.version``, with its count."""
    counts = Counter(str(v) for m in machines if (v := dig(m, "spec", "version")))
    return [
        {"version": v, "replicas": n}
        for v, n in sorted(counts.items(), key=lambda kv: parse_version(kv[0]) or (0, 0, 0))
    ]


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (``1`` or ``"25%"``) against ``total``, rounded as apimachinery rounds it."""
    if isinstance(value, bool):
        raise ValueError(f"invalid int-or-percent {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        share = int(text[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text)


# -- KubeadmControlPlane ----------------------------------------------------------------------


def kcp_rolling_update(kcp: Mapping[str, Any]) -> Mapping[str, Any]:
    """``rollingUpdate`` of v1beta1 ``spec.rolloutStrategy`` or v1beta2 ``spec.rollout.strategy``."""
    spec = kcp.get("spec") or {}
    found = dig(spec, "rolloutStrategy", "rollingUpdate") or dig(spec, "rollout", "strategy", "rollingUpdate")
    return found if isinstance(found, Mapping) else {}


def kcp_max_surge(kcp: Mapping[str, Any]) -> int:
    """KCP's maxSurge (default 1); a percentage counts against ``spec.replicas``, rounded up."""
    value = kcp_rolling_update(kcp).get("maxSurge", 1)
    replicas = int(dig(kcp, "spec", "replicas") or 1)
    return max(0, int_or_percent(value, replicas, round_up=True))


def kcp_template_name(kcp: Mapping[str, Any]) -> str | None:
    template = dig(kcp, "spec", "machineTemplate") or {}
    return ref_name(template.get("infrastructureRef")) or ref_name(dig(template, "spec", "infrastructureRef"))


def kcp_outdated_reasons(
    machine: Mapping[str, Any], infra: Mapping[str, Any] | None, kcp: Mapping[str, Any]
) -> list[str]:
    """Why a control-plane Machine needs a rollout (empty: up to date); ``infra`` is its ByoMachine."""
    reasons = []
    want = dig(kcp, "spec", "version")
    have = dig(machine, "spec", "version")
    if want and not same_version(want, have):
        reasons.append(f"Version {have or 'unset'}, {want} required")
    template = kcp_template_name(kcp)
    cloned = ((infra or {}).get("metadata") or {}).get("annotations", {}) or {}
    source = cloned.get(CLONED_FROM_NAME_ANNOTATION)
    if template and infra is not None and source is not None and source != template:
        reasons.append(f"ByoMachine is not up-to-date (cloned from {source}, {template} required)")
    return reasons


# -- MachineDeployment ------------------------------------------------------------------------


def md_rolling_update(md: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = md.get("spec") or {}
    found = dig(spec, "strategy", "rollingUpdate") or dig(spec, "rollout", "strategy", "rollingUpdate")
    return found if isinstance(found, Mapping) else {}


def md_surge_unavailable(md: Mapping[str, Any], replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable), defaults 1 and 0; surge rounds up, unavailable down, and both 0
    means unavailable 1, as CAPI's ResolveFenceposts does."""
    rolling = md_rolling_update(md)
    surge = max(0, int_or_percent(rolling.get("maxSurge", 1), replicas, round_up=True))
    unavailable = max(0, int_or_percent(rolling.get("maxUnavailable", 0), replicas, round_up=False))
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def template_hash(md: Mapping[str, Any]) -> str:
    """A stable hash of what makes a MachineDeployment's Machines up to date (version and template refs)."""
    spec = dig(md, "spec", "template", "spec") or {}

    def ref(value: Any) -> list[str]:
        return [str(value.get("kind") or ""), str(value.get("name") or "")] if isinstance(value, Mapping) else []

    key = {
        "version": str(spec.get("version") or ""),
        "infrastructureRef": ref(spec.get("infrastructureRef")),
        "bootstrap": ref(dig(spec, "bootstrap", "configRef")),
        "failureDomain": str(spec.get("failureDomain") or ""),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return str(int(digest[:8], 16) % 10**10)


@dataclass
class MdStep:
    """What one MachineDeployment reconcile does: create ``create`` new Machines, delete ``delete``."""

    create: int = 0
    delete: list[Obj] = field(default_factory=list)


def md_rollout_step(
    desired: int,
    surge: int,
    unavailable: int,
    new: Sequence[Obj],
    old: Sequence[Obj],
    ready: Callable[[Obj], bool],
    order: Callable[[list[Obj]], list[Obj]],
) -> MdStep:
    """One step of CAPI's rolling update over live Machines: ``new`` of the current template,
    ``old`` of earlier ones; ``ready(m)`` tells availability, ``order(ms)`` sorts by deletion priority."""
    step = MdStep()
    total = len(new) + len(old)
    if len(new) < desired:
        room = desired + surge - total
        step.create = max(0, min(room, desired - len(new)))
    elif len(new) > desired:
        step.delete.extend(order(list(new))[: len(new) - desired])
    if not old:
        return step
    min_available = desired - unavailable
    ready_new = sum(1 for m in new if ready(m))
    # allMachines - minAvailable - unavailable new Machines (new ones being created count as unavailable).
    max_scaled_down = total - min_available - (len(new) - ready_new)
    if max_scaled_down <= 0:
        return step
    ranked = order(list(old))
    unhealthy = [m for m in ranked if not ready(m)][:max_scaled_down]
    step.delete.extend(unhealthy)
    available = sum(1 for m in [*new, *old] if ready(m))
    budget = available - min_available
    if budget > 0:
        healthy = [m for m in ranked if ready(m)]
        step.delete.extend(healthy[:budget])
    return step


# -- MachineSet preflight ---------------------------------------------------------------------


def preflight_failure(machine_version: Any, cp: Mapping[str, Any] | None, cp_desc: str) -> str | None:
    """CAPI's MachineSet preflight checks before a new worker Machine (None: pass):
    ControlPlaneIsStable (not provisioning, not upgrading), KubernetesVersionSkew and KubeadmVersionSkew."""
    if cp is None:
        return None
    spec_version = dig(cp, "spec", "version")
    status_version = dig(cp, "status", "version")
    if not status_version:
        return f'{cp_desc} is provisioning ("ControlPlaneIsStable" preflight check failed)'
    spec_v, status_v = parse_version(spec_version), parse_version(status_version)
    if spec_v is not None and status_v is not None and spec_v > status_v:
        return f'{cp_desc} is upgrading ("ControlPlaneIsStable" preflight check failed)'
    ms_v = parse_version(machine_version)
    if ms_v is None or spec_v is None:
        return None
    if ms_v[:2] > spec_v[:2]:
        return (
            f"MachineSet version ({machine_version}) and ControlPlane version ({spec_version}) do not conform to "
            "the kubernetes version skew policy as MachineSet version is higher than ControlPlane version "
            '("KubernetesVersionSkew" preflight check failed)'
        )
    if ms_v[:2] != spec_v[:2]:
        return (
            f"MachineSet version ({machine_version}) and ControlPlane version ({spec_version}) do not conform to "
            "kubeadm version skew policy as kubeadm only supports joining with the same major+minor version as "
            'the control plane ("KubeadmVersionSkew" preflight check failed)'
        )
    return None
