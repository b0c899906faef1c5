"""The upgrade rules every face of the system checks before an upgrade starts (``shared.upgrades``)."""

from __future__ import annotations

import pytest

from shared.models import ClusterSpec, HostRef
from shared.upgrades import spare_candidates, upgrade_refusal, version_refusal


def host(i: int) -> HostRef:
    return HostRef(host_id=f"h{i}", host_name=f"node-{i}", host_ip=f"10.0.0.{i + 10}")


def cluster(cp: int, workers: int = 1, *, version: str = "v1.30.2", vip: str | None = "10.0.9.1") -> ClusterSpec:
    return ClusterSpec(
        name="c1",
        k8s_version=version,
        control_plane=tuple(host(i) for i in range(cp)),
        workers=tuple(host(10 + i) for i in range(workers)),
        vip=vip,
    )


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("v1.30.2", "v1.30.9", None),
        ("v1.30.2", "v1.31.0", None),
        ("v1.30.2", "v1.32.0", "MinorVersionSkip"),
        ("v1.30.2", "v2.0.0", "MinorVersionSkip"),
        ("v1.30.2", "v1.30.1", "Downgrade"),
        ("v1.30.2", "v1.29.9", "Downgrade"),
    ],
)
def test_one_minor_at_a_time_or_a_patch_never_down(old: str, new: str, reason: str | None) -> None:
    found = version_refusal(old, new)
    assert (found.reason if found else None) == reason


def test_a_single_control_plane_moves_to_a_spare_and_needs_a_vip() -> None:
    old = cluster(1, 2)
    same_hosts = old.model_copy(update={"k8s_version": "v1.31.1"})
    refused = upgrade_refusal(old, same_hosts)
    assert refused is not None and (refused.reason, refused.path) == ("NoSpareHost", "spec.control_plane")
    moved = same_hosts.model_copy(update={"control_plane": (host(7),)})
    assert upgrade_refusal(old, moved) is None
    no_vip = cluster(1, 2, vip=None)
    refused = upgrade_refusal(no_vip, no_vip.model_copy(update={"k8s_version": "v1.31.1", "control_plane": (host(7),)}))
    assert refused is not None and refused.reason == "NoVip"


def test_larger_control_planes_roll_in_place_and_workers_never_change() -> None:
    old = cluster(3, 1)
    up = old.model_copy(update={"k8s_version": "v1.31.1"})
    assert upgrade_refusal(old, up) is None
    moved = up.model_copy(update={"control_plane": (host(7), host(1), host(2))})
    assert getattr(upgrade_refusal(old, moved), "reason", None) == "ImmutableField"
    fewer = up.model_copy(update={"workers": ()})
    assert getattr(upgrade_refusal(old, fewer), "reason", None) == "UpgradeChangesWorkers"


def test_spare_candidates_exclude_the_clusters_own_hosts() -> None:
    assert spare_candidates(cluster(1, 1), ["h10", "h3", "h0", "h5"]) == ["h3", "h5"]
