"""Applying, scaling and deleting a rendered cluster on the management cluster through ``shared.kube``.

Writes are server-side apply with the field manager ``focom-o2ims`` (force: this service owns the
fields it renders), one object at a time in ``domain.APPLY_ORDER`` (the Cluster last). Applying an
unchanged render is a no-op for the API server, so retries and redeliveries change nothing.

Nothing we did not create is ever changed or deleted. An object is ours when it carries
``app.kubernetes.io/managed-by: focom-o2ims`` and the ``o2ims.oran.org/pr-id`` of the job. Before an
apply over an existing object its labels are read; a foreign object (hand-made, another tool's, or
another PR's cluster of the same name) stops the job with ``ForeignObject``. The apply then names the
resourceVersion it checked, so an object relabelled in between is a conflict (retried), not a
takeover. Deletion likewise removes only objects carrying our PR id.
Errors arrive classified by ``shared.kube`` (409/429/5xx temporary, 400/403/422 permanent); they
are re-raised with the object they concern.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from services.capi_renderer.domain import (
    FIELD_MANAGER,
    ClusterNames,
    CoreApiVersion,
    ObjectRef,
    RenderOptions,
    TemplateChoice,
    api_versions,
    apply_order,
    derived_objects,
    describe,
    live_template_choice,
    object_ref,
)
from services.capi_renderer.validate import SchemaValidator, render_and_validate
from shared.errors import PermanentError, ServiceError
from shared.models import ClusterSpec
from shared.objects import CLUSTER_LABEL, MANAGED_BY_LABEL, PR_ID_LABEL, deleting, labels_of, meta

log = structlog.get_logger(__name__)


class KubeApi(Protocol):
    """The part of ``shared.kube.KubeClient`` used here (a fake in unit tests)."""

    async def apply(self, obj: Mapping[str, Any], *, field_manager: str = ..., force: bool = ...) -> dict[str, Any]: ...

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, propagation: str = ...
    ) -> bool: ...

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...


class ForeignObject(PermanentError):
    """An object of the name we render exists and is not ours: we neither overwrite nor delete it."""

    def __init__(self, what: str, labels: Mapping[str, Any]) -> None:
        found = {k: labels[k] for k in (MANAGED_BY_LABEL, PR_ID_LABEL) if k in labels}
        super().__init__(
            f"{what} exists and is not ours (ownership labels {found or 'absent'}): not touching it",
            reason="ForeignObject",
        )


def owned_by(obj: Mapping[str, Any], pr_id: str) -> bool:
    """Whether ``obj`` is one we created for the PR ``pr_id``."""
    labels = labels_of(obj)
    return labels.get(MANAGED_BY_LABEL) == FIELD_MANAGER and labels.get(PR_ID_LABEL) == pr_id


def _annotate(exc: ServiceError, what: str) -> ServiceError:
    exc.message = f"{what}: {exc.message}"
    exc.args = (exc.message,)
    return exc


async def apply_cluster(client: KubeApi, objects: Sequence[Mapping[str, Any]]) -> list[ObjectRef]:
    """Server-side apply every object in dependency order; returns what was applied, in that order."""
    applied: list[ObjectRef] = []
    for obj in apply_order(objects):
        pr_id = labels_of(obj).get(PR_ID_LABEL)
        if not pr_id:
            raise PermanentError(
                f"{describe(obj)} carries no {PR_ID_LABEL} label: it could not be recognised as "
                "ours later, so it is not applied",
                reason="Unlabelled",
            )
        ref = object_ref(obj)
        try:
            current = await client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            body = obj
            if current is not None:
                if not owned_by(current, str(pr_id)):
                    raise ForeignObject(describe(obj), labels_of(current))
                # Precondition: the object we checked, not one relabelled since.
                rv = meta(current).get("resourceVersion")
                body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": rv}} if rv else obj
            await client.apply(body, field_manager=FIELD_MANAGER, force=True)
        except ForeignObject:
            raise
        except ServiceError as exc:
            raise _annotate(exc, f"applying {describe(obj)}") from None
        applied.append(object_ref(obj))
    if applied:
        log.info("cluster_applied", cluster=applied[-1].name, namespace=applied[-1].namespace, objects=len(applied))
    return applied


async def live_templates(
    client: KubeApi, spec: ClusterSpec, options: RenderOptions, workers_version: str | None = None
) -> TemplateChoice:
    """Which roles keep the live legacy machine template (``domain.TemplateChoice``), from the live KCP and
    MachineDeployment; only ours (of the PR in ``options.extra_labels``) count, a foreign one is refused later
    by the apply."""
    names, av = ClusterNames(spec.name), api_versions(options.core_api_version)
    pr_id = options.extra_labels.get(PR_ID_LABEL, "")
    live: list[dict[str, Any] | None] = []
    for kind, name in (("KubeadmControlPlane", names.control_plane), ("MachineDeployment", names.workers)):
        try:
            obj = await client.get(av[kind], kind, name, spec.namespace)
        except ServiceError as exc:
            raise _annotate(exc, f"reading {kind}/{name}") from None
        live.append(obj if obj is not None and owned_by(obj, pr_id) else None)
    kcp, md = live
    return live_template_choice(names, kcp, md, spec.k8s_version, workers_version or spec.k8s_version)


async def render_validate_apply(
    client: KubeApi, spec: ClusterSpec, options: RenderOptions, schemas: SchemaValidator | None
) -> list[ObjectRef]:
    """The whole create path: render, validate (``InputError`` before any write), apply; then remove the
    machine templates of earlier versions (after an upgrade's rollout nothing clones them any more). A role
    whose live legacy template still serves the spec's version keeps it (``live_templates``)."""
    templates = await live_templates(client, spec, options)
    # Rendering may read the CNI manifest file the first time: keep it off the event loop.
    objects = await asyncio.to_thread(render_and_validate, spec, options, schemas, None, templates)
    applied = await apply_cluster(client, objects)
    pr_id = options.extra_labels.get(PR_ID_LABEL)
    if pr_id:  # every applied object carries it (``apply_cluster`` refuses others): ours are recognised by it
        keep = {r.name for r in applied if r.kind == "ByoMachineTemplate"}
        await prune_templates(client, spec.name, spec.namespace, pr_id, keep=keep)
    return applied


async def prune_templates(client: KubeApi, name: str, namespace: str, pr_id: str, *, keep: set[str]) -> list[str]:
    """Delete the cluster's ByoMachineTemplates (ours, of this PR) not in ``keep``; returns their names."""
    av = api_versions("v1beta1")["ByoMachineTemplate"]
    try:
        found, _ = await client.list(av, "ByoMachineTemplate", namespace, label_selector=f"{CLUSTER_LABEL}={name}")
    except ServiceError as exc:
        raise _annotate(exc, f"listing the machine templates of {namespace}/{name}") from None
    stale = sorted(
        found_name
        for obj in found
        if (found_name := str(meta(obj).get("name") or "")) not in keep and owned_by(obj, pr_id)
    )
    for stale_name in stale:
        await _delete(client, ObjectRef(av, "ByoMachineTemplate", namespace, stale_name), pr_id)
    if stale:
        log.info("machine_templates_pruned", cluster=name, namespace=namespace, templates=stale)
    return stale


async def scale_cluster(
    client: KubeApi,
    spec: ClusterSpec,
    options: RenderOptions,
    schemas: SchemaValidator | None,
    workers_version: str | None = None,
) -> list[ObjectRef]:
    """Re-render with the new worker set (or, for an upgrade, the new version) and re-apply.

    With the control plane unchanged only the MachineDeployment replicas and the worker
    ByoMachineTemplate selector differ, so only those two objects change on the server. An upgrade adds
    the machine templates of the new version and points the KubeadmControlPlane (and, without
    ``workers_version``, the MachineDeployment) at them with the new version: that starts CAPI's rollout.
    Templates of the old version stay until the next ``apply``. Refuses to (re)create a cluster that does
    not exist or is being deleted. A role whose live legacy template still serves the version asked for keeps
    it (``live_templates``): a scale of a cluster an earlier release rendered rolls nothing.
    """
    templates = await live_templates(client, spec, options, workers_version)
    objects = await asyncio.to_thread(render_and_validate, spec, options, schemas, workers_version, templates)
    cluster_av = api_versions(options.core_api_version)["Cluster"]
    current = await client.get(cluster_av, "Cluster", spec.name, spec.namespace)
    if current is None:
        raise PermanentError(
            f"cannot scale cluster {spec.namespace}/{spec.name}: it does not exist", reason="ClusterNotFound"
        )
    if deleting(current):
        raise PermanentError(
            f"cannot scale cluster {spec.namespace}/{spec.name}: it is being deleted", reason="ClusterDeleting"
        )
    return await apply_cluster(client, objects)


async def check_cluster_ours(
    client: KubeApi, name: str, namespace: str, pr_id: str, *, core_api_version: CoreApiVersion = "v1beta1"
) -> None:
    """Raise ``ForeignObject`` when a Cluster of this name exists and is not ours (before touching its Machines)."""
    av = api_versions(core_api_version)["Cluster"]
    cluster = await client.get(av, "Cluster", name, namespace)
    if cluster is not None and not owned_by(cluster, pr_id):
        raise ForeignObject(f"Cluster {namespace}/{name}", labels_of(cluster))


async def cluster_gone(
    client: KubeApi, name: str, namespace: str, *, core_api_version: CoreApiVersion = "v1beta1"
) -> bool:
    """Whether the Cluster object no longer exists (CAPI removes it last, after machines and hosts)."""
    av = api_versions(core_api_version)["Cluster"]
    return await client.get(av, "Cluster", name, namespace) is None


async def _delete(client: KubeApi, ref: ObjectRef, pr_id: str) -> bool:
    """Delete ``ref`` if it is ours; a foreign object of that name is left alone (and logged)."""
    try:
        current = await client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        if current is None:
            return False
        if not owned_by(current, pr_id):
            log.warning("foreign_object_kept", kind=ref.kind, name=ref.name, namespace=ref.namespace, pr_id=pr_id)
            return False
        return await client.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
    except ServiceError as exc:
        raise _annotate(exc, f"deleting {ref.kind}/{ref.name}") from None


async def delete_cluster(
    client: KubeApi,
    name: str,
    namespace: str,
    *,
    pr_id: str,
    core_api_version: CoreApiVersion = "v1beta1",
    versions: tuple[str, ...] = (),
) -> bool:
    """Delete the PR's cluster; returns whether the Cluster is gone. Call again until it returns True.

    The Cluster is deleted and CAPI cascades (control plane, machines, hosts released, then the
    Cluster itself). The ClusterResourceSet and its ConfigMap are not owned by the Cluster, so
    they are deleted here. Once the Cluster is gone, any object left from a half-finished apply is
    deleted by name, so repeated calls converge to nothing left. Only objects carrying ``pr_id``
    are deleted: a Cluster of that name that is not ours fails the job with ``ForeignObject``.
    """
    refs = derived_objects(name, namespace, core_api_version, versions)
    names = ClusterNames(name)
    by_name = {(r.kind, r.name): r for r in refs}
    cluster = await client.get(by_name["Cluster", name].api_version, "Cluster", name, namespace)
    if cluster is not None:
        if not owned_by(cluster, pr_id):
            raise ForeignObject(f"Cluster {namespace}/{name}", labels_of(cluster))
        if not deleting(cluster):
            await _delete(client, by_name["Cluster", name], pr_id)
            log.info("cluster_delete_requested", cluster=name, namespace=namespace)
        for key in (("ClusterResourceSet", names.crs), ("ConfigMap", names.cni_configmap)):
            await _delete(client, by_name[key], pr_id)
        if not await cluster_gone(client, name, namespace, core_api_version=core_api_version):
            return False
    leftovers = 0
    for ref in reversed(refs[:-1]):
        leftovers += await _delete(client, ref, pr_id)
    # Machine templates of any version (an upgrade that stopped half-way leaves two).
    leftovers += len(await prune_templates(client, name, namespace, pr_id, keep=set()))
    if leftovers:
        log.info("cluster_leftovers_deleted", cluster=name, namespace=namespace, objects=leftovers)
    return True
