"""A cluster created without a VIP (one control-plane host on its own address) refuses a control-plane change."""

from __future__ import annotations

import pytest

from services.o2ims.rules.admission import check_change
from shared.errors import InputError
from shared.models import ClusterSpec, HostRef


def host(i: int) -> HostRef:
    return HostRef(host_id=str(i), host_name=f"node-{i}", host_ip=f"10.0.0.{i}")


def test_scaling_the_control_plane_of_a_vip_less_cluster_is_refused_with_the_reason() -> None:
    old = ClusterSpec(name="seed", k8s_version="v1.31.4", control_plane=(host(1),), workers=(host(2),))
    new = ClusterSpec(
        name="seed",
        k8s_version="v1.31.4",
        control_plane=(host(1), host(3), host(4)),
        workers=(host(2),),
        vip="10.0.0.200",
    )
    with pytest.raises(InputError) as err:
        check_change(old, new, applied=True)
    assert err.value.path == "spec.control_plane" and "has no VIP" in err.value.message
    assert "cannot be scaled" in err.value.message
    # Workers still scale as before.
    check_change(old, old.model_copy(update={"workers": (host(2), host(5))}), applied=True)
