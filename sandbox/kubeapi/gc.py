"""Garbage collection: ownerReference cascades (Background, Foreground, Orphan) and namespace termination.

Like the real controller it runs after the triggering request, from a queue fed by store events, and starts
from what is stored (``resync``), so a cascade a stopped server had not finished is finished after a restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from shared.objects import meta

from .errors import ApiError
from .registry import Registry
from .store import Event, ObjKey, Store
from .writes import Writer

log = structlog.get_logger(__name__)
_NAMESPACES: ObjKey = ("", "namespaces")
Work = tuple[str, Any]


class GarbageCollector:
    """Consumes store events; cascades deletes and finishes GC-owned finalizers."""

    def __init__(self, store: Store, registry: Registry, writer: Writer) -> None:
        self.store = store
        self.registry = registry
        self.writer = writer
        self.queue: asyncio.Queue[Work] = asyncio.Queue()
        store.hooks.append(self.observe)

    def observe(self, event: Event) -> None:
        md = meta(event.obj)
        if event.type == "DELETED":
            if md.get("uid"):
                self.queue.put_nowait(("owner-gone", md["uid"]))
            for ref in md.get("ownerReferences") or ():
                if isinstance(ref, dict) and ref.get("uid"):
                    self.queue.put_nowait(("dependent-gone", ref["uid"]))
            if event.namespace:
                self.queue.put_nowait(("namespace", event.namespace))
        elif md.get("deletionTimestamp"):
            if event.key == _NAMESPACES:
                self.queue.put_nowait(("namespace", md["name"]))
            elif {"orphan", "foregroundDeletion"} & set(md.get("finalizers") or ()):
                self.queue.put_nowait(("finalize", md.get("uid")))
        else:
            # A dependent written after its owner went (a controller acting on a stale cache re-creates what the
            # cascade just removed): like the real collector, which finds the owner absent, collect it too.
            for ref in md.get("ownerReferences") or ():
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if uid and self.store.by_uid(str(uid)) is None:
                    self.queue.put_nowait(("owner-gone", str(uid)))

    def resync(self) -> None:
        """Queue what the stored objects still call for, as the real collector does when it starts from a full
        list: owners already gone, pending orphan/foreground finalizers, terminating namespaces. The queue
        lives in memory; after a restart this is what finishes a cascade the previous process had not run."""
        gone: set[str] = set()
        for key, obj in self.store.iter_all():
            md = meta(obj)
            for ref in md.get("ownerReferences") or ():
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if uid and uid not in gone and self.store.by_uid(str(uid)) is None:
                    gone.add(str(uid))
                    self.queue.put_nowait(("owner-gone", str(uid)))
            if not md.get("deletionTimestamp"):
                continue
            if key == _NAMESPACES:
                self.queue.put_nowait(("namespace", md["name"]))
            elif {"orphan", "foregroundDeletion"} & set(md.get("finalizers") or ()):
                self.queue.put_nowait(("finalize", md.get("uid")))

    async def run(self) -> None:
        while True:
            kind, arg = await self.queue.get()
            try:
                self.step(kind, arg)
            except ApiError as exc:  # e.g. a dependent changed concurrently; the next event retries
                log.debug("gc_step_failed", step=kind, reason=exc.reason, message=exc.message)

    def drain(self) -> None:
        """Run every queued step now (used before stopping, so cascades are not lost across a restart)."""
        while not self.queue.empty():
            kind, arg = self.queue.get_nowait()
            try:
                self.step(kind, arg)
            except ApiError as exc:
                log.debug("gc_step_failed", step=kind, reason=exc.reason, message=exc.message)

    def step(self, kind: str, arg: Any) -> None:
        if kind == "owner-gone":
            self._owner_gone(str(arg))
        elif kind in ("finalize", "dependent-gone"):
            owner = self.store.by_uid(str(arg))
            if owner is not None and meta(owner).get("deletionTimestamp"):
                self._finalize(owner)
        elif kind == "namespace":
            self._namespace(str(arg))

    def _rtype_of(self, key: ObjKey) -> Any:
        return self.registry.get(*key)

    def _owner_gone(self, uid: str) -> None:
        for key, namespace, name in self.store.owned_by(uid):
            dep = self.store.get(key, namespace, name)
            rtype = self._rtype_of(key)
            if dep is None or rtype is None:
                continue
            refs = [r for r in meta(dep).get("ownerReferences") or () if isinstance(r, dict)]
            alive = [r for r in refs if r.get("uid") != uid and self.store.by_uid(str(r.get("uid"))) is not None]
            if alive:
                kept = [r for r in refs if r.get("uid") != uid]
                self.writer.system_update(rtype, dep, {**meta(dep), "ownerReferences": kept})
            elif not meta(dep).get("deletionTimestamp"):
                self.writer.delete(rtype, namespace, name, policy="Background")

    def _finalize(self, owner: dict[str, Any]) -> None:
        md = meta(owner)
        finalizers = list(md.get("finalizers") or ())
        key = self.store.uids.get(str(md.get("uid")))
        rtype = self._rtype_of(key[0]) if key else None
        if rtype is None:
            return
        dependents = self.store.owned_by(str(md["uid"]))
        if "orphan" in finalizers:
            for dkey, dns, dname in dependents:
                dep, drtype = self.store.get(dkey, dns, dname), self._rtype_of(dkey)
                if dep is not None and drtype is not None:
                    kept = [r for r in meta(dep).get("ownerReferences") or () if r.get("uid") != md["uid"]]
                    self.writer.system_update(drtype, dep, {**meta(dep), "ownerReferences": kept})
            finalizers.remove("orphan")
        elif "foregroundDeletion" in finalizers:
            if dependents:
                for dkey, dns, dname in dependents:
                    dep, drtype = self.store.get(dkey, dns, dname), self._rtype_of(dkey)
                    if dep is not None and drtype is not None and not meta(dep).get("deletionTimestamp"):
                        self.writer.delete(drtype, dns, dname, policy="Foreground")
                return
            finalizers.remove("foregroundDeletion")
        else:
            return
        current = self.store.get(*key) if key else None
        if current is not None:
            self.writer.system_update(rtype, current, {**meta(current), "finalizers": finalizers})

    def _namespace(self, name: str) -> None:
        ns = self.store.get(_NAMESPACES, "", name)
        rtype = self.registry.get(*_NAMESPACES)
        if ns is None or rtype is None or not meta(ns).get("deletionTimestamp"):
            return
        namespaced = [t for t in self.registry.types() if t.namespaced]
        for dep_type in namespaced:
            for obj in self.store.list_objects(dep_type.key, name):
                if not meta(obj).get("deletionTimestamp"):
                    self.writer.delete(dep_type, name, meta(obj)["name"], policy="Background")
        if not any(self.store.count(t.key, name) for t in namespaced):
            self.writer.remove(rtype, ns)
