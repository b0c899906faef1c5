"""Fixtures for the renderer's unit tests: spec factory, render options, CRD schemas (carried, and upstream)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.capi_renderer.domain import RenderOptions
from shared.capi_api import carried_schemas
from shared.capi_api.generate import default_upstream
from shared.crd_schema import CrdSchemas
from shared.models import ClusterSpec, HostRef

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_CNI = REPO / "examples" / "cni" / "bridge-pool.yaml"
#: The upstream CRD files (``O2_CAPI_API_UPSTREAM``, or beside the checkout): when present, every test
#: that takes ``schemas`` runs against them as well as against the carried API facts.
UPSTREAM_CRD_DIR = default_upstream()


def make_spec(
    cp: int = 1,
    workers: int = 2,
    version: str = "1.30.2",
    *,
    name: str = "edge1",
    namespace: str = "o2ims",
    cni: str | None = "bridge-pool",
    **extra: Any,
) -> ClusterSpec:
    hosts = [
        HostRef(host_id=f"host-{i}", host_name=f"node{i}", host_ip=f"192.168.10.{10 + i}") for i in range(cp + workers)
    ]
    return ClusterSpec(
        name=name,
        namespace=namespace,
        k8s_version=version,
        control_plane=tuple(hosts[:cp]),
        workers=tuple(hosts[cp:]),
        vip="192.168.10.5",
        cni=cni,
        **extra,
    )


def make_options(core: str = "v1beta1", **extra: Any) -> RenderOptions:
    return RenderOptions(core_api_version=core, cni_manifests={"bridge-pool": EXAMPLE_CNI}, **extra)  # type: ignore[arg-type]


@pytest.fixture
def spec_factory() -> Callable[..., ClusterSpec]:
    return make_spec


@pytest.fixture(params=["v1beta1", "v1beta2"])
def options(request: pytest.FixtureRequest) -> RenderOptions:
    return make_options(request.param)


@pytest.fixture(scope="session", params=["carried", "upstream"] if UPSTREAM_CRD_DIR.is_dir() else ["carried"])
def schemas(request: pytest.FixtureRequest) -> CrdSchemas:
    return carried_schemas() if request.param == "carried" else CrdSchemas.from_dirs([UPSTREAM_CRD_DIR])
