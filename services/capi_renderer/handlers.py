"""Handler of ``capi.jobs.<pr>``: apply, scale or delete one cluster and report on ``capi.events.<pr>``.

Level-based: apply is server-side apply of the full render (a re-run changes nothing), delete
asks for deletion and reports whether the Cluster is already gone (o2ims then waits for the
watcher to see it disappear). Invalid renders and permanent API errors (400/403/422) become a
``capi.failed`` event with the reason; temporary ones (409/429/5xx, timeouts) are retried by the bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

import structlog

from services.capi_renderer import apply
from services.capi_renderer.domain import ObjectRef, RenderOptions
from services.capi_renderer.validate import SchemaValidator
from shared.bus import Handler, MessageContext
from shared.errors import PermanentError
from shared.messages import Envelope
from shared.payloads import CapiApplied, CapiDeleted, CapiFailed, CapiJob
from shared.payloads import ObjectRef as RefPayload
from shared.subjects import capi_event

log = structlog.get_logger(__name__)
PR_LABEL = "o2ims.oran.org/pr-id"


@dataclass(frozen=True)
class Deps:
    client: apply.KubeApi
    options: RenderOptions
    schemas: SchemaValidator | None


def _refs(refs: list[ObjectRef]) -> tuple[RefPayload, ...]:
    return tuple(
        RefPayload(api_version=r.api_version, kind=r.kind, namespace=r.namespace, name=r.name) for r in refs
    )


def make_handler(deps: Deps) -> Handler:
    async def handle(env: Envelope, ctx: MessageContext) -> None:
        job = env.payload
        if not isinstance(job, CapiJob):
            raise PermanentError(f"capi_renderer does not handle {env.type}", reason="UnexpectedMessage")
        subject = capi_event(job.pr_id)
        # Every object carries the PR id, so the watcher can route its observations to the PR.
        options = deps.options.model_copy(update={"extra_labels": {**deps.options.extra_labels, PR_LABEL: job.pr_id}})
        applied: Literal["apply", "scale"]
        try:
            match job.action:
                case "delete":
                    gone = await apply.delete_cluster(
                        deps.client, job.spec.name, job.spec.namespace, core_api_version=options.core_api_version
                    )
                    await ctx.publish(
                        subject,
                        CapiDeleted(pr_id=job.pr_id, cluster=job.spec.name, namespace=job.spec.namespace, gone=gone),
                        key="deleted",
                    )
                    return
                case "scale":
                    refs, applied = await apply.scale_cluster(deps.client, job.spec, options, deps.schemas), "scale"
                case "apply":
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

    return handle
