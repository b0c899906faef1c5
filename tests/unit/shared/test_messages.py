"""Envelope encoding, validation and the JSON-schema snapshot of the bus contract."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InputError
from shared.messages import Envelope, decode, derive_id, envelope_json_schema
from shared.models import ClusterSpec, HostRef
from shared.payloads import CapiJob, PrStatus

SNAPSHOT = Path(__file__).parent / "envelope.schema.json"
PR = "6d1f1c6e-3f6a-5b8e-9d55-000000000001"


def _spec() -> ClusterSpec:
    return ClusterSpec(
        name="c1",
        k8s_version="1.30.2",
        control_plane=(HostRef(host_id="h1", host_name="node-1", host_ip="10.0.0.1"),),
        workers=(HostRef(host_id="h2", host_name="node-2", host_ip="10.0.0.2"),),
        vip="10.0.0.100",
    )


def test_roundtrip_and_type_from_payload() -> None:
    env = Envelope.wrap(CapiJob(pr_id=PR, action="apply", spec=_spec()), source="test", correlation_id="fpr-1")
    assert env.type == "capi.job"
    back = decode(env.encode())
    assert back == env
    assert back.payload.spec.k8s_version == "v1.30.2"  # type: ignore[union-attr]


def test_mismatched_type_is_refused() -> None:
    env = Envelope.wrap(CapiJob(pr_id=PR, action="apply", spec=_spec()), source="t")
    raw = json.loads(env.encode())
    raw["type"] = "o2ims.status"
    with pytest.raises(InputError) as err:
        decode(json.dumps(raw).encode())
    assert err.value.reason == "InvalidMessage"


def test_unknown_field_and_bad_json_are_input_errors() -> None:
    env = Envelope.wrap(CapiJob(pr_id=PR, action="apply", spec=_spec()), source="t")
    raw = json.loads(env.encode())
    raw["extra"] = 1
    with pytest.raises(InputError, match="extra"):
        decode(json.dumps(raw).encode())
    with pytest.raises(InputError):
        decode(b"{not json")
    with pytest.raises(InputError, match="exceeds"):
        decode(b" " * (1024 * 1024 + 1))


def test_derived_ids_are_stable() -> None:
    assert derive_id("a", 1) == derive_id("a", 1)
    assert derive_id("a", 1) != derive_id("a", 2)


def test_envelope_json_schema_snapshot() -> None:
    """A contract change must be a visible diff: regenerate with UPDATE_SNAPSHOTS=1."""
    schema = json.dumps(envelope_json_schema(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(schema)
    assert SNAPSHOT.read_text() == schema


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_decoder_never_raises_anything_but_input_error(data: bytes) -> None:
    with contextlib.suppress(InputError):
        decode(data)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=30,
    )
)
def test_decoder_refuses_arbitrary_json_cleanly(value: object) -> None:
    with contextlib.suppress(InputError):
        decode(json.dumps({"type": "o2ims.status", "payload": value}).encode())


def test_pr_status_requires_known_state() -> None:
    with pytest.raises(ValueError):
        PrStatus(pr_id=PR, fpr="f", cluster="c", state="done", at="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
