"""In-memory object store: one cluster-wide resourceVersion counter, a bounded event history and watch fan-out.

Stored objects are never mutated after commit (writers always build new dicts), so reads hand out shallow
copies and the history can keep references instead of deep copies.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.objects import meta

from .errors import expired

ObjKey = tuple[str, str]  # (group, plural)
_SLOW_WATCHER_LIMIT = 50_000


@dataclass(eq=False)
class Event:
    """One committed change; ``obj`` is the state after it (for DELETED, the last state) and ``prev`` before."""

    type: str
    rv: int
    key: ObjKey
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    cache: dict[tuple[str, str, bool], bytes] = field(default_factory=dict)


class Watcher:
    """A registered watch: events for one resource (and optionally one namespace, one name) are queued for its
    stream."""

    def __init__(self, key: ObjKey, namespace: str | None, name: str | None = None) -> None:
        self.key = key
        self.namespace = namespace
        #: Set when the watch selects one object by name (``fieldSelector=metadata.name=...``): only that
        #: object's events are queued, so a thousand single-object watches do not each see every write.
        self.name = name
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() > _SLOW_WATCHER_LIMIT:
            self.close()  # like the real server, drop a watcher that cannot keep up; the client re-watches
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class Store:
    """Objects by (group, plural) then (namespace, name); namespace is "" for cluster-scoped objects."""

    def __init__(self, history_size: int = 1000) -> None:
        self.rv = 0
        self.history_size = max(1, history_size)
        self.compacted_rv = 0
        self.history: deque[Event] = deque()
        self.objects: dict[ObjKey, dict[tuple[str, str], dict[str, Any]]] = {}
        #: Watchers by (resource, namespace or None, name or None): a commit reaches only the four sets
        #: that can match it, never every watch of the resource.
        self.watchers: dict[tuple[ObjKey, str | None, str | None], set[Watcher]] = {}
        self.dependents: dict[str, set[tuple[ObjKey, str, str]]] = {}
        self.uids: dict[str, tuple[ObjKey, str, str]] = {}
        self.hooks: list[Callable[[Event], None]] = []
        self.accepting_watches = True

    def get(self, key: ObjKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((namespace, name))

    def list_objects(self, key: ObjKey, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource sorted by (namespace, name); only those of ``namespace`` and ``name`` if given."""
        bucket = self.objects.get(key, {})
        if name is not None:
            if namespace is not None:
                found = bucket.get((namespace, name))
                return [found] if found is not None else []
            return [bucket[i] for i in sorted(i for i in bucket if i[1] == name)]
        idents = sorted(bucket) if namespace is None else sorted(i for i in bucket if i[0] == namespace)
        return [bucket[i] for i in idents]

    def count(self, key: ObjKey, namespace: str) -> int:
        return sum(1 for ns, _ in self.objects.get(key, {}) if ns == namespace)

    def iter_all(self) -> Iterator[tuple[ObjKey, dict[str, Any]]]:
        for key, bucket in list(self.objects.items()):
            for obj in list(bucket.values()):
                yield key, obj

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        ident = self.uids.get(uid)
        return self.get(*ident) if ident else None

    def owned_by(self, uid: str) -> list[tuple[ObjKey, str, str]]:
        return sorted(self.dependents.get(uid, ()))

    def commit(self, type_: str, key: ObjKey, obj: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
        """Store (or, for DELETED, remove) ``obj`` under a new resourceVersion and notify watchers and hooks."""
        self.rv += 1
        md = meta(obj)
        stored = {**obj, "metadata": {**md, "resourceVersion": str(self.rv)}}
        namespace, name = md.get("namespace", ""), md["name"]
        bucket = self.objects.setdefault(key, {})
        uid = md.get("uid")
        if type_ == "DELETED":
            bucket.pop((namespace, name), None)
            self.uids.pop(str(uid), None)
        else:
            bucket[(namespace, name)] = stored
            if uid:
                self.uids[uid] = (key, namespace, name)
        self._index_owners(key, namespace, name, prev, None if type_ == "DELETED" else stored)
        event = Event(type_, self.rv, key, namespace, stored, prev)
        self.history.append(event)
        while len(self.history) > self.history_size:
            self.compacted_rv = self.history.popleft().rv
        for scope in ((key, None, None), (key, namespace, None), (key, None, name), (key, namespace, name)):
            for watcher in list(self.watchers.get(scope, ())):
                watcher.push(event)
        for hook in self.hooks:
            hook(event)
        return stored

    def restore(self, key: ObjKey, obj: dict[str, Any]) -> None:
        """Put back a persisted object as-is (no event, no new resourceVersion)."""
        md = meta(obj)
        namespace, name = md.get("namespace", ""), md["name"]
        self.objects.setdefault(key, {})[(namespace, name)] = obj
        if md.get("uid"):
            self.uids[md["uid"]] = (key, namespace, name)
        self._index_owners(key, namespace, name, None, obj)

    def _index_owners(
        self, key: ObjKey, namespace: str, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        ident = (key, namespace, name)
        for obj, add in ((old, False), (new, True)):
            for ref in meta(obj).get("ownerReferences") or () if obj else ():
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if not uid:
                    continue
                if add:
                    self.dependents.setdefault(uid, set()).add(ident)
                else:
                    found = self.dependents.get(uid)
                    if found is not None:
                        found.discard(ident)
                        if not found:
                            del self.dependents[uid]

    def events_since(self, rv: int, key: ObjKey, namespace: str | None, name: str | None = None) -> list[Event]:
        """Kept events after ``rv`` for one resource (and namespace, name); 410 Expired when some were dropped,
        or when ``rv`` is one this store never issued (a client of an earlier incarnation that lost its state):
        the client must list again rather than wait for a resourceVersion that may already name other writes."""
        if rv < self.compacted_rv:
            raise expired(f"too old resource version: {rv} ({self.compacted_rv})")
        if rv > self.rv:
            raise expired(f"too large resource version: {rv}, current: {self.rv}")
        return [
            e
            for e in self.history
            if e.rv > rv
            and e.key == key
            and (namespace is None or e.namespace == namespace)
            and (name is None or e.obj["metadata"]["name"] == name)
        ]

    def compact(self) -> None:
        self.history.clear()
        self.compacted_rv = self.rv

    def watch(self, key: ObjKey, namespace: str | None, name: str | None = None) -> Watcher:
        watcher = Watcher(key, namespace, name)
        if self.accepting_watches:
            self.watchers.setdefault(self._scope(watcher), set()).add(watcher)
        else:
            watcher.close()  # the server is stopping: the stream ends at once and the client resumes later
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        watcher.closed = True
        scope = self._scope(watcher)
        watchers = self.watchers.get(scope)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self.watchers[scope]  # one set per short-lived single-object watch would pile up

    @staticmethod
    def _scope(watcher: Watcher) -> tuple[ObjKey, str | None, str | None]:
        return watcher.key, watcher.namespace, watcher.name

    def close_watchers(self) -> None:
        self.accepting_watches = False
        for watchers in self.watchers.values():
            for watcher in list(watchers):
                watcher.close()
        self.watchers.clear()
