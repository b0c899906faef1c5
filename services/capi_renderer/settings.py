"""Settings of the capi_renderer service (environment prefix ``O2_CAPI_RENDERER_``, common fields ``O2_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.capi_renderer.cni_source import CALICO_URL, CniSources
from shared.settings import ServiceSettings


class CapiRendererSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="O2_CAPI_RENDERER_", extra="ignore", populate_by_name=True, frozen=True
    )

    #: The management cluster's kubeconfig.
    kubeconfig: Path = Path("~/.kube/config")
    kube_context: str | None = None
    #: What renders are validated against: ``cluster`` (the CRDs the management cluster serves, read
    #: once at start), ``carried`` (the CAPI/BYOH API carried in the repository) or ``files`` (``crd_dirs``).
    crd_source: Literal["cluster", "carried", "files"] = "cluster"
    #: Directories of CRD YAML files, for ``crd_source=files``.
    crd_dirs: list[Path] = Field(default_factory=list)
    #: Render the core CAPI objects as v1beta1 (CAPI 1.4 to 1.15) or v1beta2 (CAPI ≥ 1.11).
    core_api_version: Literal["v1beta1", "v1beta2"] = "v1beta1"
    kube_vip_image: str = "ghcr.io/kube-vip/kube-vip:v1.2.2"
    #: CNI name → the pinned upstream release manifest's URL (a cluster that names no CNI gets Calico).
    cni_releases: dict[str, str] = Field(default_factory=lambda: {"calico": CALICO_URL})
    #: CNI name → the manifest's sha256, checked on every download (a URL without one is never
    #: downloaded) and on a local file when given. Calico's is not pinned by default: set it.
    cni_sha256: dict[str, str] = Field(default_factory=dict)
    #: CNI name → where to get it instead: a mirror URL (same bytes, same sha256) or a local file (air-gapped).
    cni_sources: dict[str, str] = Field(default_factory=dict)
    #: CNI name → local manifest file (as the chart mounts them); ``cni_sources`` takes precedence.
    cni_manifests: dict[str, Path] = Field(default_factory=dict)
    #: Where downloaded manifests are kept, one file per sha256 (downloaded once, shared by replicas);
    #: unset: ``focom-o2ims-cni`` in the system's temporary directory.
    cni_cache_dir: Path | None = None
    #: Seconds one manifest download may take.
    cni_fetch_timeout: float = Field(60.0, gt=0)
    service_domain: str = "cluster.local"

    def cni_sources_resolver(self) -> CniSources:
        """The CNI origins these settings describe (checked here: a bad URL, path or sha256 stops the start)."""
        return CniSources(
            releases=self.cni_releases,
            sha256=self.cni_sha256,
            sources=self.cni_sources,
            files=self.cni_manifests,
            cache_dir=self.cni_cache_dir,
            timeout=self.cni_fetch_timeout,
        )
