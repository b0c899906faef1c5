"""The latest observed objects of every watched kind, and which cluster or host each change concerns.

Watches write here (``upsert``/``delete``/``replace`` after a re-list); every write
returns the status keys it may have changed, so only those are recomputed. ``view()``
assembles a cluster's objects for the pure reducer. Secrets are reduced to their
metadata on the way in: the kubeconfig's presence matters, its content never stays here.

Nothing here scans every cluster or every ClusterResourceSet for one change (that made each
change cost as much as the clusters watched, and the whole watch grow with their square):
Clusters are indexed by label and by the control plane they name, resource sets by a label
their selector requires, so a change looks only at the objects that can concern it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from services.status_watcher.domain import (
    ClusterView,
    cluster_of,
    control_plane_ref,
    host_cluster,
    kubeconfig_owner,
    owner_name,
    selector_matches,
)
from shared.objects import Obj, dig, labels_of, meta

ObjKey = tuple[str, str]


@dataclass(frozen=True, order=True)
class StatusKey:
    """One published status: ``kind`` is ``cluster`` or ``byohost``."""

    kind: Literal["cluster", "byohost"]
    namespace: str
    name: str


#: The kinds the cache understands (the watch layer names them the same way).
CLUSTER, KCP, MD, MACHINE, CRS, SECRET, BYOHOST = (
    "Cluster",
    "KubeadmControlPlane",
    "MachineDeployment",
    "Machine",
    "ClusterResourceSet",
    "Secret",
    "ByoHost",
)
KINDS = (CLUSTER, KCP, MD, MACHINE, CRS, SECRET, BYOHOST)


def _key(obj: Obj) -> ObjKey:
    m = meta(obj)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def _rv(obj: Obj | None) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def slim(kind: str, obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the cache keeps of an object; None when the object is of no interest (e.g. other Secrets)."""
    m = dict(meta(obj))
    m.pop("managedFields", None)
    if kind == SECRET:
        if kubeconfig_owner(str(m.get("name") or "")) is None:
            return None
        keep = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp")
        return {"metadata": {k: m[k] for k in keep if k in m}, "type": obj.get("type")}
    return {**obj, "metadata": m}


LabelKey = tuple[str, str, str]


def _crs_label(crs: Obj) -> tuple[str, str] | None:
    """One label a resource set's selector requires (any will do: a cluster it selects has them all)."""
    required = dig(crs, "spec", "clusterSelector", "matchLabels")
    if isinstance(required, Mapping) and required:
        key = min(required)
        return str(key), str(required[key])
    return None


class ObjectCache:
    def __init__(self) -> None:
        self._objects: dict[str, dict[ObjKey, Obj]] = {kind: {} for kind in KINDS}
        #: kind -> (namespace, cluster) -> object keys, for KCP/MD/Machine/ByoHost.
        self._members: dict[str, dict[ObjKey, set[ObjKey]]] = {k: defaultdict(set) for k in (KCP, MD, MACHINE, BYOHOST)}
        self._member_of: dict[str, dict[ObjKey, ObjKey]] = {k: {} for k in (KCP, MD, MACHINE, BYOHOST)}
        #: (namespace, label, value) -> Clusters with that label; (namespace, name) -> Clusters naming that KCP.
        self._clusters_by_label: dict[LabelKey, set[ObjKey]] = defaultdict(set)
        self._clusters_by_cp: dict[ObjKey, set[ObjKey]] = defaultdict(set)
        #: (namespace, label, value) -> resource sets requiring that label; namespace -> the rest (no matchLabels).
        self._crs_by_label: dict[LabelKey, set[ObjKey]] = defaultdict(set)
        self._crs_unlabelled: dict[str, set[ObjKey]] = defaultdict(set)

    # -- reads --------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects[kind].get((namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> list[Obj]:
        objs = self._objects[kind]
        return [o for (ns, _), o in objs.items() if namespace is None or ns == namespace]

    def count(self, kind: str) -> int:
        return len(self._objects[kind])

    def status_keys(self) -> set[StatusKey]:
        """Every cluster and host currently known (what a restart republishes)."""
        keys = {StatusKey("cluster", ns, n) for ns, n in self._objects[CLUSTER]}
        return keys | {StatusKey("byohost", ns, n) for ns, n in self._objects[BYOHOST]}

    def _members_of(self, kind: str, cluster: ObjKey) -> list[Obj]:
        objs = self._objects[kind]
        return [objs[k] for k in self._members[kind].get(cluster, ()) if k in objs]

    def view(self, namespace: str, name: str, *, probe_enabled: bool = False) -> ClusterView:
        cluster = self.get(CLUSTER, namespace, name)
        ckey = (namespace, name)
        kcp = None
        ref = control_plane_ref(cluster)
        if ref is not None:
            kcp = self.get(KCP, namespace, ref)
        if kcp is None:
            owned = sorted(self._members_of(KCP, ckey), key=_key)
            kcp = owned[0] if owned else None
        return ClusterView(
            namespace=namespace,
            name=name,
            cluster=cluster,
            control_plane=kcp,
            deployments=self._members_of(MD, ckey),
            machines=self._members_of(MACHINE, ckey),
            resource_sets=self._resource_sets_for(namespace, labels_of(cluster)),
            hosts=self._members_of(BYOHOST, ckey),
            kubeconfig_present=self.get(SECRET, namespace, f"{name}-kubeconfig") is not None,
            probe_enabled=probe_enabled,
        )

    def _resource_sets_for(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        """The resource sets that may select a cluster with ``labels`` (the reducer checks the selectors)."""
        keys = set(self._crs_unlabelled.get(namespace, ()))
        for label, value in labels.items():
            keys |= self._crs_by_label.get((namespace, label, value), set())
        objs = self._objects[CRS]
        return [objs[k] for k in sorted(keys) if k in objs]

    # -- writes (each returns the status keys to recompute) --------------------------------------

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> set[StatusKey]:
        kept = slim(kind, obj)
        if kept is None:
            return set()
        key = _key(kept)
        old = self._objects[kind].get(key)
        if old is not None and _rv(old) == _rv(kept) and _rv(kept):
            return set()
        self._objects[kind][key] = kept
        self._index(kind, key, kept)
        self._relink(kind, key, old, kept)
        return self._affected(kind, old) | self._affected(kind, kept)

    def delete(self, kind: str, obj: Mapping[str, Any]) -> set[StatusKey]:
        key = _key(obj)
        old = self._objects[kind].pop(key, None)
        if old is None:
            return set()
        self._unindex(kind, key)
        self._relink(kind, key, old, None)
        return self._affected(kind, old)

    def replace(self, kind: str, namespace: str | None, items: Iterable[Mapping[str, Any]]) -> set[StatusKey]:
        """A fresh list of ``kind`` in ``namespace`` (None: all): apply only the real differences."""
        fresh: dict[ObjKey, Mapping[str, Any]] = {}
        for obj in items:
            kept = slim(kind, obj)
            if kept is not None:
                fresh[_key(kept)] = obj
        dirty: set[StatusKey] = set()
        for key in [k for k in self._objects[kind] if namespace is None or k[0] == namespace]:
            if key not in fresh:
                dirty |= self.delete(kind, self._objects[kind][key])
        for obj in fresh.values():
            dirty |= self.upsert(kind, obj)
        return dirty

    # -- membership -----------------------------------------------------------------------------

    def _owner(self, kind: str, obj: Obj) -> ObjKey | None:
        if kind == BYOHOST:
            return host_cluster(obj)
        name = cluster_of(obj) if kind != KCP else (owner_name(obj, "Cluster") or cluster_of(obj))
        return (_key(obj)[0], name) if name else None

    def _index(self, kind: str, key: ObjKey, obj: Obj) -> None:
        if kind not in self._members:
            return
        self._unindex(kind, key)
        owner = self._owner(kind, obj)
        if owner is not None:
            self._members[kind][owner].add(key)
            self._member_of[kind][key] = owner

    def _unindex(self, kind: str, key: ObjKey) -> None:
        if kind not in self._members:
            return
        owner = self._member_of[kind].pop(key, None)
        if owner is not None:
            members = self._members[kind].get(owner)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._members[kind][owner]

    def _relink(self, kind: str, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        """Keep the label and control-plane indexes of Clusters and resource sets in step with ``key``."""
        if kind not in (CLUSTER, CRS):
            return
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            for index, slot in self._slots(kind, key[0], obj):
                if add:
                    index[slot].add(key)
                elif slot in index:
                    index[slot].discard(key)
                    if not index[slot]:
                        del index[slot]  # a label of a deleted cluster must not stay behind

    def _slots(self, kind: str, ns: str, obj: Obj) -> list[tuple[dict[Any, set[ObjKey]], Any]]:
        """Where ``obj`` is indexed: (index, slot) pairs."""
        if kind == CLUSTER:
            slots: list[tuple[dict[Any, set[ObjKey]], Any]] = [
                (self._clusters_by_label, (ns, k, v)) for k, v in labels_of(obj).items()
            ]
            if (ref := control_plane_ref(obj)) is not None:
                slots.append((self._clusters_by_cp, (ns, ref)))
            return slots
        label = _crs_label(obj)
        return [(self._crs_by_label, (ns, *label))] if label else [(self._crs_unlabelled, ns)]

    def _clusters_in(self, ns: str) -> dict[ObjKey, Obj]:
        return {k: c for k, c in self._objects[CLUSTER].items() if k[0] == ns}

    def _affected(self, kind: str, obj: Obj | None) -> set[StatusKey]:
        if obj is None:
            return set()
        ns, name = _key(obj)
        if kind == CLUSTER:
            return {StatusKey("cluster", ns, name)}
        if kind == BYOHOST:
            claimed = host_cluster(obj)
            return {StatusKey("byohost", ns, name)} | ({StatusKey("cluster", *claimed)} if claimed else set())
        if kind == SECRET:
            cluster = kubeconfig_owner(name)
            return {StatusKey("cluster", ns, cluster)} if cluster else set()
        if kind == CRS:
            selector = dig(obj, "spec", "clusterSelector")
            label = _crs_label(obj)
            clusters = self._objects[CLUSTER]
            candidates = (
                {k: clusters[k] for k in self._clusters_by_label.get((ns, *label), ()) if k in clusters}
                if label
                else self._clusters_in(ns)  # a selector of expressions only: every cluster may match
            )
            return {
                StatusKey("cluster", cns, n)
                for (cns, n), c in candidates.items()
                if selector_matches(selector, labels_of(c))
            }
        keys: set[StatusKey] = set()
        owner = self._owner(kind, obj)
        if owner is not None:
            keys.add(StatusKey("cluster", *owner))
        if kind == KCP:
            # A KCP not yet owned is still found through its Cluster's controlPlaneRef.
            keys |= {StatusKey("cluster", cns, n) for cns, n in self._clusters_by_cp.get((ns, name), ())}
        return keys
