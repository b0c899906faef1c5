"""The validating webhooks a CAPI + BYOH management cluster runs, for the kinds the sandbox needs them on.

- **ByoHost** (BYOH's ``vbyohost.kb.io``): an update (of spec, metadata or status) is accepted only
  from the BYOH controller manager's service account and from the host's own agent, user
  ``byoh:host:<the ByoHost's name>``; anyone else gets the webhook's denial (403). A delete is refused
  while ``status.machineRef`` is set. (Upstream matches the agent name as a substring and leaves the
  status subresource unchecked, the sandbox is stricter on both; upstream also checks creates, which
  the sandbox leaves open so that tests may create ByoHosts as fixtures.)
- **KubeadmControlPlane** (CAPI's KCP webhook): ``rollingUpdate.maxSurge`` is 0 or 1, and 0 (scale in
  first) needs at least 3 replicas; a version change may not skip a minor version.

Writes the server makes itself (garbage collection: ``user`` None) are not sent to webhooks here.
"""

from __future__ import annotations

import re
from typing import Any

from shared.objects import dig, meta

from .errors import ApiError
from .registry import ResourceType

#: The BYOH controller manager's service account: the only identity besides a host's agent that may update ByoHosts.
BYOH_CONTROLLER_USER = "system:serviceaccount:byoh-system:byoh-controller-manager"
#: The user name a host's agent authenticates as (its client certificate's CN upstream).
HOST_USER_PREFIX = "byoh:host:"

_INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
_CONTROLPLANE_GROUP = "controlplane.cluster.x-k8s.io"
_BYOHOST_WEBHOOK = "vbyohost.kb.io"
_KCP_WEBHOOK = "validation.kubeadmcontrolplane.controlplane.cluster.x-k8s.io"
_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)")


def _denied(webhook: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'admission webhook "{webhook}" denied the request: {message}')


def _invalid(webhook: str, kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    texts = [f"{path}: {text}" for path, _, text in causes]
    summary = texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"
    details = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [{"reason": reason, "message": text, "field": path} for path, reason, text in causes],
    }
    message = f'admission webhook "{webhook}" denied the request: {kind}.{group} "{name}" is invalid: {summary}'
    return ApiError(422, "Invalid", message, details)


def admit_write(rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], user: str | None) -> None:
    """Run the validating webhooks on a create (``old`` None) or an update; raises the denial."""
    if user is None:
        return
    if rtype.group == _INFRA_GROUP and rtype.kind == "ByoHost" and old is not None:
        _admit_byohost_update(new, user)
    elif rtype.group == _CONTROLPLANE_GROUP and rtype.kind == "KubeadmControlPlane":
        _admit_kcp(rtype, old, new)


def admit_delete(rtype: ResourceType, old: dict[str, Any]) -> None:
    if rtype.group == _INFRA_GROUP and rtype.kind == "ByoHost" and dig(old, "status", "machineRef"):
        raise _denied(_BYOHOST_WEBHOOK, "cannot delete ByoHost when MachineRef is assigned")


def _admit_byohost_update(new: dict[str, Any], user: str) -> None:
    if user == BYOH_CONTROLLER_USER:
        return
    name = str(meta(new).get("name") or "")
    if not user.startswith(HOST_USER_PREFIX):
        raise _denied(_BYOHOST_WEBHOOK, f"{user} is not a valid agent username")
    if user.removeprefix(HOST_USER_PREFIX) != name:
        raise _denied(_BYOHOST_WEBHOOK, f"{user} cannot create/update resource {name}")


def _rolling_update(kcp: dict[str, Any]) -> tuple[str, Any]:
    spec = kcp.get("spec") or {}
    if "rollout" in spec:
        return "spec.rollout.strategy.rollingUpdate", dig(spec, "rollout", "strategy", "rollingUpdate")
    return "spec.rolloutStrategy.rollingUpdate", dig(spec, "rolloutStrategy", "rollingUpdate")


def _admit_kcp(rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    causes: list[tuple[str, str, str]] = []
    path, rolling = _rolling_update(new)
    if isinstance(rolling, dict) and "maxSurge" in rolling:
        surge = rolling["maxSurge"]
        # Upstream compares with intstr.FromInt(0|1): a string (even "1") or a percentage is refused.
        if type(surge) is not int or surge not in (0, 1):
            causes.append((f"{path}.maxSurge", "FieldValueInvalid", f"Invalid value: {surge!r}: value must be 1 or 0"))
        elif surge == 0 and int(dig(new, "spec", "replicas") or 1) < 3:
            causes.append(
                (
                    path,
                    "FieldValueRequired",
                    "Required value: when KubeadmControlPlane is configured to scale-in, replica count needs to be "
                    "at least 3",
                )
            )
    before, after = dig(old, "spec", "version"), dig(new, "spec", "version")
    prev, nxt = _VERSION.match(str(before or "")), _VERSION.match(str(after or ""))
    if old is not None and prev and nxt and before != after:
        p = tuple(int(x) for x in prev.groups())
        n = tuple(int(x) for x in nxt.groups())
        if n[:2] >= (p[0], p[1] + 2):
            causes.append(
                (
                    "spec.version",
                    "FieldValueForbidden",
                    f"Forbidden: cannot update Kubernetes version from {before} to {after}",
                )
            )
    if causes:
        raise _invalid(_KCP_WEBHOOK, rtype.kind, rtype.group, str(meta(new).get("name") or ""), causes)
