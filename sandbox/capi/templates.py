"""Template ownership: the Cluster owns the machine templates its control plane and MachineDeployments use.

CAPI's KubeadmControlPlane and MachineDeployment controllers add the Cluster as an owner of the
infrastructure and bootstrap templates they reference, so deleting the Cluster garbage-collects them;
the simulators do the same, or a deleted cluster would leave templates behind that a new cluster of the
same name could not take over.
"""

from __future__ import annotations

from sandbox.capi.options import BOOTSTRAP_GROUP, INFRA_VERSION
from sandbox.capi.runtime import SimContext
from sandbox.capi.shapes import Obj, ref_name, with_owner
from shared.objects import dig, meta, namespace_of

#: The template kinds the BYOH flavour references, with the version we read them at.
_VERSIONS = {"ByoMachineTemplate": INFRA_VERSION, "KubeadmConfigTemplate": f"{BOOTSTRAP_GROUP}/v1beta1"}


def md_templates(md: Obj) -> list[tuple[str, str]]:
    """(kind, name) of the templates a MachineDeployment references."""
    spec = dig(md, "spec", "template", "spec") or {}
    refs = [spec.get("infrastructureRef"), dig(spec, "bootstrap", "configRef")]
    return [(str(r.get("kind")), name) for r in refs if isinstance(r, dict) and (name := ref_name(r))]


def kcp_templates(kcp: Obj) -> list[tuple[str, str]]:
    """(kind, name) of the infrastructure template a KubeadmControlPlane references (v1beta1 and v1beta2)."""
    template = dig(kcp, "spec", "machineTemplate") or {}
    ref = template.get("infrastructureRef") or dig(template, "spec", "infrastructureRef")
    name = ref_name(ref) if isinstance(ref, dict) else None
    return [(str(ref.get("kind")), name)] if isinstance(ref, dict) and name else []


async def own_templates(ctx: SimContext, cluster: Obj, templates: list[tuple[str, str]]) -> None:
    """Add ``cluster`` as an owner of each template that exists and lacks it."""
    namespace = namespace_of(cluster)
    for kind, name in templates:
        version = _VERSIONS.get(kind)
        if version is None:
            continue
        obj = await ctx.client.get(version, kind, name, namespace)
        if obj is None:
            continue
        refs = with_owner(obj, cluster)
        if refs is not None:
            rv = meta(obj).get("resourceVersion")
            await ctx.patch(obj, {"metadata": {"ownerReferences": refs, "resourceVersion": rv}})
