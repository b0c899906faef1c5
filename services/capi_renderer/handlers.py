"""Handler of ``capi.jobs.<pr>``: apply, scale or delete one cluster and report on ``capi.events.<pr>``.

Level-based: apply is server-side apply of the full render (a re-run changes nothing; machine templates
of earlier versions are removed after it), upgrade re-applies with the versioned templates of a new
version (the control plane alone while ``workers_version`` holds the workers back), delete
asks for deletion and reports whether the Cluster is already gone (o2ims then waits for the
watcher to see it disappear). Invalid renders and permanent API errors (400/403/422) become a
``capi.failed`` event with the reason; temporary ones (409/429/5xx, timeouts) are retried by the bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, assert_never

import structlog

from services.capi_renderer import apply, scale
from services.capi_renderer.cni_source import CniSources
from services.capi_renderer.domain import ObjectRef, RenderOptions
from services.capi_renderer.validate import SchemaValidator
from shared.bus import MessageContext
from shared.dispatch import PayloadHandler
from shared.errors import PermanentError
from shared.objects import PR_ID_LABEL
from shared.payloads import CapiApplied, CapiDeleted, CapiFailed, CapiJob
from shared.payloads import ObjectRef as RefPayload
from shared.subjects import capi_event

log = structlog.get_logger(__name__)


class KubeApi(apply.KubeApi, scale.MachineApi, Protocol):
    """What the handler needs of ``shared.kube.KubeClient``."""


@dataclass(frozen=True)
class Deps:
    client: KubeApi
    options: RenderOptions
    schemas: SchemaValidator | None
    #: Where CNI manifests come from; None: only ``options.cni_manifests`` (tests, ``o2ctl plan``).
    cni: CniSources | None = None


def _refs(refs: list[ObjectRef]) -> tuple[RefPayload, ...]:
    return tuple(RefPayload(api_version=r.api_version, kind=r.kind, namespace=r.namespace, name=r.name) for r in refs)


async def _with_cni(deps: Deps, job: CapiJob, options: RenderOptions) -> RenderOptions:
    """The render options with the cluster's CNI manifest as a local file (downloaded once when needed)."""
    return options if deps.cni is None else await deps.cni.with_manifest(job.spec.cni, options)


def make_handler(deps: Deps) -> PayloadHandler:
    async def on_job(job: CapiJob, ctx: MessageContext) -> None:
        subject = capi_event(job.pr_id)
        # Every object carries the PR id, so the watcher can route its observations to the PR.
        labels = {**deps.options.extra_labels, PR_ID_LABEL: job.pr_id}
        options = deps.options.model_copy(update={"extra_labels": labels})
        applied: Literal["apply", "scale", "upgrade"]
        try:
            match job.action:
                case "delete":
                    gone = await apply.delete_cluster(
                        deps.client,
                        job.spec.name,
                        job.spec.namespace,
                        pr_id=job.pr_id,
                        core_api_version=options.core_api_version,
                        versions=(job.spec.k8s_version,),
                    )
                    await ctx.publish(
                        subject,
                        CapiDeleted(pr_id=job.pr_id, cluster=job.spec.name, namespace=job.spec.namespace, gone=gone),
                        key="deleted",
                    )
                    return
                case "scale":
                    options = await _with_cni(deps, job, options)
                    # Before the count goes down: the Machines on leaving hosts go first, not CAPI's pick;
                    # and only the Machines of a Cluster that is ours.
                    await apply.check_cluster_ours(
                        deps.client,
                        job.spec.name,
                        job.spec.namespace,
                        job.pr_id,
                        core_api_version=options.core_api_version,
                    )
                    await scale.mark_leaving_workers(deps.client, job.spec, options.core_api_version, job.pr_id)
                    refs, applied = await apply.scale_cluster(deps.client, job.spec, options, deps.schemas), "scale"
                case "upgrade":
                    options = await _with_cni(deps, job, options)
                    await apply.check_cluster_ours(
                        deps.client,
                        job.spec.name,
                        job.spec.namespace,
                        job.pr_id,
                        core_api_version=options.core_api_version,
                    )
                    refs = await apply.scale_cluster(
                        deps.client, job.spec, options, deps.schemas, workers_version=job.workers_version
                    )
                    applied = "upgrade"
                case "apply":
                    options = await _with_cni(deps, job, options)
                    refs = await apply.render_validate_apply(deps.client, job.spec, options, deps.schemas)
                    applied = "apply"
                case _:
                    assert_never(job.action)
        except PermanentError as exc:
            log.warning("capi_job_failed", pr_id=job.pr_id, action=job.action, reason=exc.reason, error=exc.message)
            await ctx.publish(
                subject,
                CapiFailed(pr_id=job.pr_id, action=job.action, reason=exc.reason, message=exc.message),
                key="failed",
            )
            return
        await ctx.publish(subject, CapiApplied(pr_id=job.pr_id, action=applied, objects=_refs(refs)), key="applied")

    return on_job
