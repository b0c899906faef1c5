"""Composition root of capi_renderer: settings, the Kubernetes client, CRD schemas, the job consumer."""

from __future__ import annotations

import asyncio

import structlog

from services.capi_renderer import handlers
from services.capi_renderer.domain import RenderOptions, api_versions
from services.capi_renderer.settings import CapiRendererSettings
from shared.capi_api import carried_schemas
from shared.crd_schema import CrdSchemas
from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import CAPI_JOBS_CONSUMER

log = structlog.get_logger(__name__)


async def _schemas(settings: CapiRendererSettings, client: KubeClient) -> CrdSchemas:
    """The CRDs renders are validated against; by default those the management cluster serves."""
    if settings.crd_source == "cluster":
        schemas = CrdSchemas.from_crd_objects(await client.list_crds())
        # Renders of kinds the cluster does not serve fail validation by name; say so once at start too.
        missing = sorted(
            f"{kind}.{api}"
            for kind, api in api_versions(settings.core_api_version).items()
            if "/" in api and schemas.lookup(api, kind) is None
        )
        if missing:
            log.warning(
                "crds_not_served",
                missing=missing,
                hint="install Cluster API and the BYOH provider on the management cluster",
            )
        return schemas
    if settings.crd_source == "carried":
        return await asyncio.to_thread(carried_schemas)
    missing = [str(d) for d in settings.crd_dirs if not d.is_dir()]
    if missing or not settings.crd_dirs:
        raise PermanentError(
            f"CRD directories not found: {', '.join(missing) or 'none given'} "
            "(set O2_CAPI_RENDERER_CRD_DIRS, or O2_CAPI_RENDERER_CRD_SOURCE=cluster|carried)"
        )
    return await asyncio.to_thread(CrdSchemas.from_dirs, settings.crd_dirs)


async def setup(runtime: ServiceRuntime[CapiRendererSettings]) -> None:
    s = runtime.settings
    client = await KubeClient.from_kubeconfig(s.kubeconfig.expanduser(), context=s.kube_context)
    runtime.on_close(client.close)
    options = RenderOptions(
        core_api_version=s.core_api_version, kube_vip_image=s.kube_vip_image, service_domain=s.service_domain
    )
    deps = handlers.Deps(
        client=client, options=options, schemas=await _schemas(s, client), cni=s.cni_sources_resolver()
    )
    runtime.consume(CAPI_JOBS_CONSUMER, handlers.make_handler(deps))


def main() -> int:
    return run_service("capi_renderer", CapiRendererSettings, setup)
