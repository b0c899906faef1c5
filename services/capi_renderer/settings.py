"""Settings of the capi_renderer service (environment prefix ``O2_CAPI_RENDERER_``, common fields ``O2_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.capi_renderer.validate import default_crd_dir
from shared.settings import ServiceSettings


class CapiRendererSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="O2_CAPI_RENDERER_", extra="ignore", populate_by_name=True, frozen=True
    )

    #: The management cluster's kubeconfig.
    kubeconfig: Path = Path("~/.kube/config")
    kube_context: str | None = None
    #: Where to read CRD schemas for validation: ``files`` (``crd_dirs``) or ``cluster`` (the
    #: management cluster's own CRDs, read once at start).
    crd_source: Literal["files", "cluster"] = "files"
    crd_dirs: list[Path] = Field(default_factory=lambda: [default_crd_dir()])
    #: Render the core CAPI objects as v1beta1 (CAPI 1.4 to 1.15) or v1beta2 (CAPI ≥ 1.11).
    core_api_version: Literal["v1beta1", "v1beta2"] = "v1beta1"
    kube_vip_image: str = "ghcr.io/kube-vip/kube-vip:v1.2.2"
    #: CNI name → manifest file carried to the workload cluster by a ClusterResourceSet (JSON object).
    cni_manifests: dict[str, Path] = Field(default_factory=dict)
    service_domain: str = "cluster.local"
