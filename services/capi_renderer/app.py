"""Composition root of capi_renderer: settings, the Kubernetes client, CRD schemas, the job consumer."""

from __future__ import annotations

import asyncio

from services.capi_renderer import handlers
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.settings import CapiRendererSettings
from shared.crd_schema import CrdSchemas
from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import CAPI_JOBS_CONSUMER


async def _schemas(settings: CapiRendererSettings, client: KubeClient) -> CrdSchemas:
    if settings.crd_source == "cluster":
        return CrdSchemas.from_crd_objects(await client.list_crds())
    missing = [str(d) for d in settings.crd_dirs if not d.is_dir()]
    if missing:
        raise PermanentError(f"CRD directories not found: {', '.join(missing)} (set O2_CAPI_RENDERER_CRD_DIRS)")
    return await asyncio.to_thread(CrdSchemas.from_dirs, settings.crd_dirs)


async def setup(runtime: ServiceRuntime[CapiRendererSettings]) -> None:
    s = runtime.settings
    client = await KubeClient.from_kubeconfig(s.kubeconfig.expanduser(), context=s.kube_context)
    runtime.on_close(client.close)
    options = RenderOptions(
        core_api_version=s.core_api_version,
        kube_vip_image=s.kube_vip_image,
        cni_manifests=s.cni_manifests,
        service_domain=s.service_domain,
    )
    deps = handlers.Deps(client=client, options=options, schemas=await _schemas(s, client))
    runtime.consume(CAPI_JOBS_CONSUMER, handlers.make_handler(deps))


def main() -> int:
    return run_service("capi_renderer", CapiRendererSettings, setup)
