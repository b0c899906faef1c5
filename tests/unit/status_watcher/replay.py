"""Replays a recorded object sequence through the watcher's cache and reducer, one summary per event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.status_watcher.cache import ObjectCache
from services.status_watcher.domain import summarize_cluster
from shared.payloads import ClusterSummary

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / f"{name}.json").read_text()))


@dataclass
class Step:
    event: dict[str, Any]
    summary: ClusterSummary
    cache: ObjectCache


def replay(name: str, cluster: str = "c1", namespace: str = "default") -> list[Step]:
    cache = ObjectCache()
    steps = []
    for event in load(name):
        if event["type"] == "DELETED":
            cache.delete(event["kind"], event["object"])
        else:
            cache.upsert(event["kind"], event["object"])
        steps.append(Step(event, summarize_cluster(cache.view(namespace, cluster)), cache))
    return steps
