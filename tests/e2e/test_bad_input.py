"""Bad input on the whole system: every malformed inventory and request is refused cleanly.

The corpus (``tests/e2e/corpus``: inventories and FOCOM request envelopes, plus an oversized one of each made
here) covers wrong types, missing fields, duplicate ids, unknown and shared hosts, even control-plane counts,
bad versions and CIDRs, injection attempts in names, non-UTF-8 bytes and deeply nested JSON. Each inventory
becomes focom's ``input.json`` and is asked for with ``allClusters``; each request envelope is published on
``focom.requests`` as it is. "Refused cleanly" means: exactly one ``message.failed`` event, at the first
delivery (no retries), and, after the whole corpus, nothing published downstream, nothing leased, no FPR
record, no service restarted or logging an error, every service ready and a valid request still Synced.
A hypothesis fuzz does the same with generated envelopes and bytes, and drives the decoders directly.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.focom import request as rq
from shared.errors import InputError
from shared.inventory import InventoryError, parse_inventory
from shared.messages import Envelope, decode
from shared.models import DNS1123_LABEL
from shared.payloads import FocomRequest, FprStatus, MessageFailed
from shared.subjects import CAPI, FOCOM_REQUESTS, HOSTPREP, O2IMS
from tests.e2e.harness import Stack, StackOptions, eventually

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).parent / "corpus"
INVENTORIES = sorted((CORPUS / "inventories").iterdir())
REQUESTS = sorted((CORPUS / "requests").iterdir())
OPTIONS = StackOptions(clusters=1, hosts_per_cluster=3, spare_hosts=6)
#: The reasons of a clean refusal: the envelope, the request or the inventory named as the problem.
REQUEST_REASONS = {"InvalidMessage", "MessageTooLarge", "InvalidRequest", "UnknownFpr", "UnknownTemplate"}
INVENTORY_REASONS = {"InvalidInventory"}


class StatusLog:
    """Every envelope published on ``focom.status.>`` (refusals and FPR statuses), in arrival order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Envelope]] = []
        self.arrived = asyncio.Event()

    async def on_msg(self, msg: Any) -> None:
        self.items.append((msg.subject, decode(msg.data)))
        self.arrived.set()

    async def outcome(self, send: Any, what: str) -> MessageFailed | str:
        """Send something and return the refusal it caused, or what was published instead of one."""
        before = len(self.items)
        await send()

        async def answered() -> bool:
            return len(self.items) > before

        await eventually(answered, 40, f"an answer to {what}", wake=self.arrived)
        subject, env = self.items[before]
        return env.payload if isinstance(env.payload, MessageFailed) else f"accepted: {subject} {env.payload}"


async def publish_raw(stack: Stack, data: bytes) -> None:
    await stack.bus.js.publish(FOCOM_REQUESTS, data, headers={"Nats-Msg-Id": str(uuid.uuid4())}, timeout=10)


def oversized_inventory() -> bytes:
    """Over focom's 8 MiB inventory limit."""
    return b'{"k8s_version": "v1.30.2", "hosts": [], "clusters": [], "note": "' + b"a" * (9 << 20) + b'"}'


def oversized_request() -> bytes:
    """Just under NATS's 1 MB message limit: far more clusters than one request may name."""
    names = [f"c{i:06d}" for i in range(85_000)]
    payload = {"type": "focom.request", "name": "oversized", "clusterNames": names}
    return json.dumps({"type": "focom.request", "payload": payload}).encode()


def clean(what: str, f: MessageFailed | str) -> bool:
    """Refused at the first delivery, as bad input, with a message."""
    if isinstance(f, str):
        return False
    reasons = INVENTORY_REASONS if what.startswith("inventory") else REQUEST_REASONS
    return f.deliveries == 1 and bool(f.error) and f.reason in reasons


async def nothing_happened(stack: Stack) -> None:
    """Nothing published downstream, nothing leased, no FPR record, every service healthy and quiet."""
    for stream, subjects in ((O2IMS, "o2ims.requests.>"), (HOSTPREP, "hostprep.>"), (CAPI, "capi.>")):
        assert await stack.count(stream.name, subjects) == 0, f"something was published on {subjects}"
    assert await stack.leases() == {}
    assert await stack.fprs() == {}
    for name in stack.services:
        assert stack.child(name).restarts == 0, f"{name} restarted"
        assert await stack.ready(name), f"{name} is not ready"
        errors = [r for r in stack.log_records(name) if r.get("level") in ("error", "critical")]
        assert errors == [], f"{name} logged errors: {errors[:3]}"


async def still_works(stack: Stack, good_inventory: dict[str, Any]) -> None:
    stack.write_inventory(good_inventory)
    await stack.submit("still-works", clusterNames=["c001"])
    rec = await stack.settled("still-works", timeout=90)
    assert rec["phase"] == "Synced", rec


async def test_the_corpus_is_refused_cleanly(tmp_path: Path) -> None:
    assert len(INVENTORIES) + len(REQUESTS) >= 50
    async with Stack(tmp_path / "stack", OPTIONS) as stack:
        log = StatusLog()
        await stack.bus.nc.subscribe("focom.status.>", cb=log.on_msg)
        good = dict(stack.inventory)
        refusals: dict[str, MessageFailed | str] = {}
        cases = [(f"request {p.name}", p.read_bytes()) for p in REQUESTS] + [("request oversized", oversized_request())]
        for what, data in cases:
            refusals[what] = await log.outcome(lambda data=data: publish_raw(stack, data), what)
        inventories = [(p.name, p.read_bytes()) for p in INVENTORIES] + [("oversized", oversized_inventory())]
        for i, (name, data) in enumerate(inventories):
            stack.write_inventory(data)
            what = f"inventory {name}"
            refusals[what] = await log.outcome(lambda i=i: stack.submit(f"inv-{i}", allClusters=True), what)
        unclean = {
            what: f if isinstance(f, str) else (f.reason, f.deliveries, f.path, f.error[:300])
            for what, f in refusals.items()
            if not clean(what, f)
        }
        assert unclean == {}, "accepted, refused only after retries, or not as bad input:\n" + "\n".join(
            f"{k}: {v}" for k, v in unclean.items()
        )
        await nothing_happened(stack)
        await still_works(stack, good)


def test_a_request_name_with_a_trailing_newline_is_refused_as_invalid() -> None:
    # A "$"-anchored pattern used with re.match lets "evil\n" through; the request must fail as bad input.
    with pytest.raises(InputError, match=r"\$\.name"):
        rq.check_shape(FocomRequest.model_construct(name="evil\n", allClusters=True), max_clusters=1000)


# ── hypothesis: generated envelopes and bytes ──────────────────────────────────────────

_DNS = re.compile(DNS1123_LABEL)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: A request name focom must refuse: the whole request is then invalid, whatever the other fields hold.
BAD_NAMES = st.one_of(
    st.text(max_size=80).filter(lambda s: len(s) > 63 or not _DNS.fullmatch(s)),
    st.sampled_from(["evil\n", "x.y", "x y", "A", "-x", "x-", "x" * 64, "*", ">", "x\x00"]),
    JSON.filter(lambda v: not isinstance(v, str)),
)
FIELDS = {
    k: JSON | st.sampled_from(v)
    for k, v in {
        "operation": ["create", "scale", "delete", "destroy"],
        "allClusters": [True, False],
        "clusterNames": [["c001"], ["c001", "c001"], []],
        "templateName": ["byoh-workload-cluster", "nope"],
        "templateParameters": [{"clusterName": "t1"}],
        "workers": [[{"hostId": "host-009"}]],
        "targetWorkerCount": [-1, 0, 2, 10**9],
    }.items()
}
PAYLOADS = st.fixed_dictionaries({"type": st.just("focom.request"), "name": BAD_NAMES}, optional=FIELDS)
ENVELOPES = st.fixed_dictionaries(
    {"type": st.just("focom.request"), "payload": PAYLOADS},
    optional={
        "correlation_id": st.text(max_size=20),
        "schema_version": st.integers(-2, 3),
        "source": JSON,
        "id": st.uuids().map(str) | JSON,
        "occurred_at": JSON,
    },
)
RAW = st.one_of(
    ENVELOPES.map(lambda e: json.dumps(e).encode()), st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode())
)
FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def generated(strategy: st.SearchStrategy[bytes], n: int) -> list[bytes]:
    """``n`` examples of ``strategy``, drawn by hypothesis (derandomized: the same list every run)."""
    out: list[bytes] = []

    @settings(FUZZ, max_examples=n)
    @given(strategy)
    def collect(value: bytes) -> None:
        out.append(value)

    collect()
    return out


async def test_fuzzed_requests_are_refused_cleanly(tmp_path: Path) -> None:
    cases = generated(RAW, 300)
    async with Stack(tmp_path / "stack", OPTIONS) as stack:
        log = StatusLog()
        await stack.bus.nc.subscribe("focom.status.>", cb=log.on_msg)
        for i, data in enumerate(cases):
            refusal = await log.outcome(lambda data=data: publish_raw(stack, data), f"example {i}")
            assert isinstance(refusal, MessageFailed) and refusal.deliveries == 1, (data[:300], refusal)
        await nothing_happened(stack)
        assert not [e for _, e in log.items if isinstance(e.payload, FprStatus)]


@FUZZ
@given(RAW)
def test_the_envelope_decoder_refuses_with_input_errors_only(data: bytes) -> None:
    try:
        decode(data)
    except InputError as exc:
        assert exc.reason in ("InvalidMessage", "MessageTooLarge")


@FUZZ
@given(PAYLOADS)
def test_the_request_checks_refuse_with_input_errors_only(payload: dict[str, Any]) -> None:
    try:
        req = FocomRequest.model_validate(payload)
    except ValidationError:
        return
    with pytest.raises(InputError):
        rq.check_shape(req, max_clusters=1000)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"k8s_version": JSON | st.just("v1.30.2"), "hosts": JSON, "clusters": JSON}).map(
            lambda v: json.dumps(v).encode()
        ),
    )
)
def test_the_inventory_parser_refuses_with_inventory_errors_only(data: bytes) -> None:
    try:
        parse_inventory(data)
    except InventoryError as exc:
        assert exc.problems
