"""Resolving a FOCOM ``upgrade`` request: the version each cluster is to run, its spare host, its new spec.

The version is the one the inventory (the cluster's own ``k8s_version``, else the top-level one) or the
template's ``k8sVersion`` now names; the rules are ``shared.upgrades``'; a single control plane moves to a
spare host picked from the inventory's unassigned hosts. Pure; shared like ``shared.focom_request``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pydantic import ValidationError

from shared.focom_request import RequestError, mode_of
from shared.inventory import DEFAULT_WINDOW, Inventory, Window
from shared.models import ClusterSpec, normalize_version, version_tuple
from shared.payloads import FocomRequest
from shared.safe_json import Problem, short
from shared.upgrades import Refusal, spare_candidates, upgrade_refusal


def _refuse(problem: Problem, req: FocomRequest) -> NoReturn:
    raise RequestError([problem], name=req.name)


def upgrade_version(
    req: FocomRequest, cluster: str, inventory: Inventory, window: Window = DEFAULT_WINDOW
) -> tuple[str, str]:
    """The version ``cluster`` is to run now and where it was read: the template's ``k8sVersion``, or the
    inventory's (the cluster's own ``k8s_version``, else the top-level one); within the supported ``window``."""
    if mode_of(req) == "template":
        path = "$.templateParameters.k8sVersion"
        raw = (req.templateParameters or {}).get("k8sVersion")
    else:
        found = inventory.cluster(cluster)
        if found is None:
            _refuse(
                Problem(
                    "$.clusterNames", "cluster-exists", f"cluster {short(cluster)} is not in the inventory any more"
                ),
                req,
            )
        i = inventory.cluster_index(cluster)
        path = f"inventory $.clusters[{i}].k8s_version" if found.k8s_version else "inventory $.k8s_version"
        raw = found.k8s_version or inventory.k8s_version
    try:
        version = normalize_version(str(raw) if isinstance(raw, str) else "")
    except ValueError:
        _refuse(Problem(path, "version", f"{short(str(raw))} is not a Kubernetes version [v]X.Y.Z"), req)
    (lo, hi), minor = window, version_tuple(version)[:2]
    if not lo <= minor <= hi:
        supported = f"v{lo[0]}.{lo[1]} to v{hi[0]}.{hi[1]}"
        _refuse(Problem(path, "version-window", f"{version} is outside the supported {supported}"), req)
    return version, path


def upgrade_spare_candidates(current: ClusterSpec, inventory: Inventory) -> list[str]:
    """The inventory's unassigned hosts (in no cluster of it) outside ``current``: spares for a single control plane."""
    assigned = {h for c in inventory.clusters for h in (*c.master_ids, *c.worker_ids)}
    return spare_candidates(current, [h.host_id for h in inventory.hosts if h.host_id not in assigned])


def upgraded_spec(
    req: FocomRequest, current: ClusterSpec, version: str, spare: str | None, inventory: Inventory
) -> ClusterSpec:
    """``current`` at ``version`` (a single control plane on ``spare``), or the refusal of ``shared.upgrades``."""
    update: dict[str, Any] = {"k8s_version": version}
    if spare is not None:
        host = inventory.host(spare)
        assert host is not None
        update["control_plane"] = [host.ref()]
    try:
        new = ClusterSpec.model_validate({**current.model_dump(), **update})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        _refuse(Problem("$", "cluster-spec", f"cluster {current.name!r}: {first['msg']}"), req)
    refusal = upgrade_refusal(current, new)
    if refusal is not None:
        refuse_upgrade(req, current.name, refusal)
    return new


def refuse_upgrade(req: FocomRequest, cluster: str, refusal: Refusal, path: str | None = None) -> NoReturn:
    """Refuse the request for ``refusal``, whose reason code becomes the refusal's reason."""
    error = RequestError(
        [Problem(path or "$", refusal.reason, f"cluster {short(cluster)}: {refusal.message}")], name=req.name
    )
    error.reason = refusal.reason
    raise error
