"""Pure helpers on CAPI/BYOH object dicts: refs, selectors, owners, condition lists (generic readers: shared.objects).

The emulator stores an object once and serves it under every version without
field conversion, so readers here accept both shapes (``apiVersion`` or
``apiGroup`` refs, ``initialized`` or ``initialization.controlPlaneInitialized``).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.objects import condition, condition_true, meta, name_of, now_timestamp

Obj = dict[str, Any]
OWN_CONDITIONS = ("status", "conditions")

_ALNUM = string.ascii_lowercase + string.digits


def suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


# -- refs -------------------------------------------------------------------------------------


def ref_name(ref: Any) -> str | None:
    return str(ref["name"]) if isinstance(ref, Mapping) and ref.get("name") else None


def ref_group(ref: Any) -> str:
    if not isinstance(ref, Mapping):
        return ""
    return str(ref.get("apiGroup") or group_of(str(ref.get("apiVersion") or "")))


def make_ref(api_version: str, kind: str, name: str, namespace: str, *, v1beta2: bool) -> Obj:
    """A contract ref in the shape of the core version being written."""
    if v1beta2:
        return {"apiGroup": group_of(api_version), "kind": kind, "name": name}
    return {"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace}


def owner_ref(owner: Mapping[str, Any], *, controller: bool = False) -> Obj:
    ref: Obj = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name_of(owner),
        "uid": meta(owner)["uid"],
    }
    if controller:
        ref["controller"] = True
        ref["blockOwnerDeletion"] = True
    return ref


def owner_name(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def with_owner(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> list[Obj] | None:
    """The owner list with ``owner`` added, or None when it is already there."""
    refs = list(meta(obj).get("ownerReferences") or [])
    uid = meta(owner).get("uid")
    if any(r.get("uid") == uid for r in refs):
        return None
    return [*refs, owner_ref(owner)]


# -- selectors --------------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or [])
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_string(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" if v else k for k, v in sorted(labels.items()))


# -- conditions -------------------------------------------------------------------------------


def find_condition(obj: Mapping[str, Any], ctype: str, *paths: Sequence[str]) -> dict[str, Any] | None:
    """A copy of a condition of ``obj`` from status.conditions (or from the other given status paths)."""
    found = condition(obj, ctype, (OWN_CONDITIONS, *paths))
    return dict(found) if found is not None else None


def own_condition_true(obj: Mapping[str, Any], ctype: str) -> bool:
    """The condition in the object's own shape (``status.conditions``) is True: the emulated
    controllers read only the shape they write themselves."""
    return condition_true(obj, ctype, (OWN_CONDITIONS,))


class Conditions:
    """Builds a condition list, keeping ``lastTransitionTime`` of conditions whose status did not change."""

    def __init__(self, existing: Iterable[Mapping[str, Any]] | None, *, v1beta2: bool) -> None:
        self._old = {str(c.get("type")): c for c in existing or [] if isinstance(c, Mapping)}
        self._new: list[Obj] = []
        self.v1beta2 = v1beta2

    def set(
        self,
        ctype: str,
        status: bool,
        reason: str = "",
        message: str = "",
        severity: str = "Info",
        *,
        v1beta2_reason: str | None = None,
    ) -> None:
        """Add one condition; the v1beta1 shape drops empty fields and adds severity when False."""
        value = "True" if status else "False"
        cond: Obj = {"type": ctype, "status": value}
        if self.v1beta2:
            cond["reason"] = v1beta2_reason or reason or ("True" if status else "False")
            cond["message"] = message
        else:
            if not status:
                cond["severity"] = severity
                if reason:
                    cond["reason"] = reason
            if message:
                cond["message"] = message
        old = self._old.get(ctype)
        keep = old is not None and old.get("status") == value and old.get("lastTransitionTime")
        cond["lastTransitionTime"] = old["lastTransitionTime"] if keep and old else now_timestamp()
        self._new = [c for c in self._new if c["type"] != ctype]
        self._new.append(cond)

    def all_true(self, *types: str) -> bool:
        wanted = set(types)
        return all(c["status"] == "True" for c in self._new if c["type"] in wanted)

    def first_false(self, *types: str) -> Obj | None:
        for c in self._new:
            if c["type"] in types and c["status"] != "True":
                return c
        return None

    def summary(self, ctype: str, *of: str) -> None:
        """A Ready/Available-style summary: True when every listed condition is True."""
        bad = self.first_false(*of)
        if bad is None:
            self.set(ctype, True, v1beta2_reason=ctype if self.v1beta2 else None)
        else:
            reason = str(bad.get("reason") or f"{bad['type']}NotTrue")
            self.set(
                ctype,
                False,
                reason,
                str(bad.get("message") or f"{bad['type']} is not true"),
                str(bad.get("severity") or "Info"),
                v1beta2_reason=f"Not{ctype}",
            )

    def replica_set_v1beta2(self, replicas: int, desired: int, *, rollout: str = "") -> None:
        """The v1beta2 rollout/scaling conditions every replica owner (KCP, MachineDeployment) carries;
        ``rollout`` is the RollingOut message while some Machines are not up to date."""
        if rollout:
            self.set("MachinesUpToDate", False, message=rollout, v1beta2_reason="NotUpToDate")
            self.set("RollingOut", True, message=rollout, v1beta2_reason="RollingOut")
        else:
            self.set("MachinesUpToDate", True, v1beta2_reason="UpToDate")
            self.set("RollingOut", False, v1beta2_reason="NotRollingOut")
        self.set("ScalingUp", replicas < desired, v1beta2_reason="ScalingUp" if replicas < desired else "NotScalingUp")
        down = replicas > desired
        self.set("ScalingDown", down, v1beta2_reason="ScalingDown" if down else "NotScalingDown")
        for ctype, reason in (("Remediating", "NotRemediating"), ("Deleting", "NotDeleting"), ("Paused", "NotPaused")):
            self.set(ctype, False, v1beta2_reason=reason)

    def build(self) -> list[Obj]:
        return sorted(self._new, key=lambda c: str(c["type"]))


# -- change detection -------------------------------------------------------------------------


def differs(current: Any, wanted: Any) -> bool:
    """Whether a merge patch ``wanted`` would change ``current`` (None means "remove")."""
    if isinstance(wanted, Mapping):
        if current is None:
            current = {}
        if not isinstance(current, Mapping):
            return True
        for key, value in wanted.items():
            if value is None:
                if key in current and current[key] is not None:
                    return True
            elif differs(current.get(key), value):
                return True
        return False
    return bool(current != wanted)


def resource_version(obj: Mapping[str, Any]) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0
