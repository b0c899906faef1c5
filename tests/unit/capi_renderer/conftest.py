"""Fixtures for the renderer's unit tests: spec factory, render options, reference CRD schemas."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.validate import default_crd_dir
from shared.crd_schema import CrdSchemas
from shared.models import ClusterSpec, HostRef

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_CNI = REPO / "examples" / "cni" / "bridge-pool.yaml"
#: ``O2_CAPI_RENDERER_CRD_DIR`` (the renderer setting's variable) or the sandbox's ``SANDBOX_CRD_DIR``.
CRD_DIR = Path(os.environ.get("O2_CAPI_RENDERER_CRD_DIR") or os.environ.get("SANDBOX_CRD_DIR") or default_crd_dir())


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
    hosts = [HostRef(host_id=f"host-{i}", host_name=f"node{i}", host_ip=f"192.168.10.{10 + i}")
             for i in range(cp + workers)]
    return ClusterSpec(name=name, namespace=namespace, k8s_version=version, control_plane=tuple(hosts[:cp]),
                       workers=tuple(hosts[cp:]), vip="192.168.10.5", cni=cni, **extra)


def make_options(core: str = "v1beta1", **extra: Any) -> RenderOptions:
    return RenderOptions(core_api_version=core, cni_manifests={"bridge-pool": EXAMPLE_CNI}, **extra)  # type: ignore[arg-type]


@pytest.fixture
def spec_factory() -> Callable[..., ClusterSpec]:
    return make_spec


@pytest.fixture(params=["v1beta1", "v1beta2"])
def options(request: pytest.FixtureRequest) -> RenderOptions:
    return make_options(request.param)


@pytest.fixture(scope="session")
def schemas() -> CrdSchemas:
    if not CRD_DIR.is_dir():
        pytest.skip(f"reference CRDs not found at {CRD_DIR} (set O2_CAPI_RENDERER_CRD_DIR)")
    return CrdSchemas.from_dirs([CRD_DIR])
