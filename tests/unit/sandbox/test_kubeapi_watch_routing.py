"""The emulator's store queues an event only for the watches that can match it (resource, namespace, name)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.kubeapi.selectors import selected_name
from sandbox.kubeapi.store import Store, Watcher

KEY = ("infrastructure.cluster.x-k8s.io", "byohosts")
OTHER = ("cluster.x-k8s.io", "clusters")


def obj(name: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}}


def queued(watcher: Watcher) -> list[tuple[str, str, str]]:
    out = []
    while not watcher.queue.empty():
        event = watcher.queue.get_nowait()
        assert event is not None
        out.append((event.type, event.namespace, event.obj["metadata"]["name"]))
    return out


def test_events_reach_only_watches_of_their_resource_namespace_and_name() -> None:
    store = Store()
    everywhere, in_ns, in_other_ns = store.watch(KEY, None), store.watch(KEY, "ns"), store.watch(KEY, "other")
    named_a, named_a_any_ns, named_b = (
        store.watch(KEY, "ns", "a"),
        store.watch(KEY, None, "a"),
        store.watch(KEY, "ns", "b"),
    )
    other_resource = store.watch(OTHER, "ns", "a")
    store.commit("ADDED", KEY, obj("a"), None)
    store.commit("MODIFIED", KEY, obj("a"), obj("a"))
    store.commit("ADDED", KEY, obj("a", "other"), None)
    store.commit("DELETED", KEY, obj("b"), obj("b"))
    assert queued(everywhere) == [
        ("ADDED", "ns", "a"),
        ("MODIFIED", "ns", "a"),
        ("ADDED", "other", "a"),
        ("DELETED", "ns", "b"),
    ]
    assert queued(in_ns) == [("ADDED", "ns", "a"), ("MODIFIED", "ns", "a"), ("DELETED", "ns", "b")]
    assert queued(in_other_ns) == [("ADDED", "other", "a")]
    assert queued(named_a) == [("ADDED", "ns", "a"), ("MODIFIED", "ns", "a")]
    assert queued(named_a_any_ns) == [("ADDED", "ns", "a"), ("MODIFIED", "ns", "a"), ("ADDED", "other", "a")]
    assert queued(named_b) == [("DELETED", "ns", "b")]
    assert queued(other_resource) == []


def test_unwatch_leaves_no_empty_scope_behind() -> None:
    store = Store()
    watchers = [store.watch(KEY, "ns", f"h{i}") for i in range(100)] + [store.watch(KEY, None)]
    for watcher in watchers:
        store.unwatch(watcher)
    assert store.watchers == {}
    store.commit("ADDED", KEY, obj("h1"), None)
    assert all(w.queue.empty() for w in watchers)


def test_list_and_replay_by_name() -> None:
    store = Store()
    for namespace in ("ns", "other"):
        for name in ("a", "b"):
            store.commit("ADDED", KEY, obj(name, namespace), None)
    assert [o["metadata"]["namespace"] for o in store.list_objects(KEY, None, "a")] == ["ns", "other"]
    assert [o["metadata"]["name"] for o in store.list_objects(KEY, "ns", "b")] == ["b"]
    assert store.list_objects(KEY, "ns", "missing") == []
    assert [(e.namespace, e.obj["metadata"]["name"]) for e in store.events_since(0, KEY, None, "b")] == [
        ("ns", "b"),
        ("other", "b"),
    ]


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        (None, None),
        ("", None),
        ("metadata.name=a", "a"),
        ("metadata.name==a", "a"),
        ("metadata.namespace=ns, metadata.name = a", "a"),
        ("metadata.name!=a", None),
        ("metadata.namespace=ns", None),
        ("metadata.name=", ""),
    ],
)
def test_the_name_a_field_selector_requires(selector: str | None, name: str | None) -> None:
    assert selected_name(selector) == name
