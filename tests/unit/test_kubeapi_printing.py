"""The emulator's JSONPath subset (CRD printer columns) and its age format."""

from __future__ import annotations

import pytest

from sandbox.kubeapi.jsonpath import JsonPathError, evaluate
from sandbox.kubeapi.tables import human_duration, negotiate

OBJ = {
    "metadata": {"name": "c1", "labels": {"cluster.x-k8s.io/cluster-name": "edge"}},
    "status": {
        "phase": "Provisioned",
        "ready": False,
        "replicas": 3,
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Paused", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    },
}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (".status.phase", ["Provisioned"]),
        ("{.status.replicas}", [3]),
        (".status.ready", [False]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", ["Paused"]),
        (".status.conditions[-1].type", ["Paused"]),
        (".status.conditions[*].type", ["Ready", "Paused"]),
        ('.status.addresses[?(@.type=="ExternalIP")].address', []),
        (".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", ["edge"]),
        (".spec.missing.field", []),
        (".status.conditions[7]", []),
    ],
)
def test_printer_column_paths(expr: str, want: list[object]) -> None:
    assert evaluate(expr, OBJ) == want


def test_unsupported_paths_are_refused_not_guessed() -> None:
    with pytest.raises(JsonPathError):
        evaluate(".status..phase[", OBJ)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (185, "3m5s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_kubectls(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_accept_negotiation() -> None:
    assert negotiate(None, collection=True).kind == "object"
    assert (
        negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", collection=True).api_version
        == "meta.k8s.io/v1beta1"
    )
    assert negotiate("application/json;as=Table;v=v2;g=meta.k8s.io,application/json", collection=True).kind == "object"
    assert negotiate("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io", collection=False).kind == "partial"
