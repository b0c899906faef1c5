"""The rules of a Kubernetes upgrade of an existing cluster, checked before anything starts. Pure.

One place for them, so focom (an ``upgrade`` request), the O2IMS API (a PR update with a newer
``k8sVersion``) and o2ims (the PR update itself) refuse alike, with the same reason:

- versions only move forward (``Downgrade``), one minor version at a time or patch versions
  (``MinorVersionSkip``);
- an upgrade changes nothing but the version, except that a single control plane moves to a spare
  host: a KubeadmControlPlane rollout of one replica needs ``maxSurge: 1``, i.e. one more free host at
  the new version, and the old host leaves once the new one runs (``NoSpareHost`` when none is named);
  such a control plane needs a VIP, since its API endpoint must not move with it (``NoVip``);
- control planes of 3 or more roll in place (``maxSurge: 0``): their hosts stay.

Kubelet skew needs no further rule here: the control plane goes first, so a kubelet is never newer
than an API server, and workers stay one minor behind for the length of the rollout (the policy allows
three). What the cluster really runs is checked against the record by o2ims (``VersionSkew``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import ClusterSpec, version_tuple


@dataclass(frozen=True)
class Refusal:
    """Why an upgrade is refused: the field (a path into the cluster spec), a reason code, an explanation."""

    path: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def is_upgrade(old: ClusterSpec, new: ClusterSpec) -> bool:
    """The change asks for another Kubernetes version (valid or not: the rules say)."""
    return old.k8s_version != new.k8s_version


def version_refusal(old: str, new: str) -> Refusal | None:
    """None when ``old`` → ``new`` is an allowed step (a patch, or the next minor version)."""
    before, after = version_tuple(old), version_tuple(new)
    path = "spec.k8s_version"
    if after < before:
        return Refusal(path, "Downgrade", f"{old} → {new} is a downgrade; Kubernetes versions only move forward")
    if after[0] != before[0] or after[1] - before[1] > 1:
        return Refusal(
            path, "MinorVersionSkip", f"{old} → {new} skips a minor version; upgrade one minor version at a time"
        )
    return None


def upgrade_refusal(old: ClusterSpec, new: ClusterSpec) -> Refusal | None:
    """The first rule ``old`` → ``new`` (a version change) breaks, or None when it may start."""
    found = version_refusal(old.k8s_version, new.k8s_version)
    if found is not None:
        return found
    if new.workers != old.workers:
        return Refusal(
            "spec.workers",
            "UpgradeChangesWorkers",
            "an upgrade keeps the workers as they are; scale before or after it",
        )
    if len(old.control_plane) > 1 or len(new.control_plane) > 1:
        if new.control_plane != old.control_plane:
            return Refusal(
                "spec.control_plane",
                "ImmutableField",
                "control-plane hosts cannot change; a control plane of several hosts is upgraded in place",
            )
        return None
    if old.vip is None:
        return Refusal(
            "spec.vip",
            "NoVip",
            f"cluster {old.name} has no VIP: its API endpoint is its control-plane host's own address, which "
            "cannot move to the spare host a single control plane is upgraded onto (recreate it with a VIP)",
        )
    if new.control_plane == old.control_plane:
        return no_spare(old)
    return None


def no_spare(old: ClusterSpec) -> Refusal:
    """The refusal of a single control plane's upgrade without a spare host."""
    return Refusal(
        "spec.control_plane",
        "NoSpareHost",
        f"cluster {old.name} has a single control plane: its upgrade needs one spare host (the new control "
        f"plane joins on it before {old.control_plane[0].host_id} leaves), and none is free",
    )


def spare_candidates(spec: ClusterSpec, unassigned: list[str]) -> list[str]:
    """Hosts that may serve as the spare of ``spec``'s single control plane, best first (not its own)."""
    own = {h.host_id for h in spec.all_hosts}
    return sorted(h for h in unassigned if h not in own)
