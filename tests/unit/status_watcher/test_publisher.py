"""Publishing plans: dedup by content, id chains that survive restarts, transitions before summaries."""

from __future__ import annotations

from services.status_watcher.cache import StatusKey
from services.status_watcher.domain import summarize_byohost
from services.status_watcher.publisher import Published, plan, remembered
from shared.messages import Envelope, decode
from shared.payloads import ClusterSummary, ClusterTransition
from tests.unit.status_watcher import objects as o

KEY = StatusKey("cluster", "default", "c1")

PR = "0d9c3c4e-5b6a-5f7e-8a9b-0c1d2e3f4a5b"


def cs(**fields: object) -> ClusterSummary:
    return ClusterSummary(namespace="default", name="c1", pr_id=PR, **fields)  # type: ignore[arg-type]


def run(states: list[ClusterSummary], last: Published | None = None) -> tuple[list[Envelope], Published | None]:
    out: list[Envelope] = []
    for state in states:
        envs, last = plan(KEY, last, state, source="t")
        out += envs
    return out, last


def test_the_first_state_is_published_and_an_unchanged_one_is_not() -> None:
    envs, last = run([cs(phase="Provisioning"), cs(phase="Provisioning")])
    assert [e.type for e in envs] == ["k8s.cluster.status"]
    assert last is not None and last.id == envs[0].id


def test_ready_publishes_the_transition_first_then_the_summary() -> None:
    envs, last = run([cs(phase="Provisioned"), cs(phase="Provisioned", ready=True)])
    assert [e.type for e in envs] == ["k8s.cluster.status", "cluster.ready", "k8s.cluster.status"]
    assert envs[1].causation_id == envs[2].id and last is not None and last.ready
    assert isinstance(envs[1].payload, ClusterTransition) and envs[1].payload.pr_id == PR


def test_ids_are_deterministic_and_a_returning_state_gets_a_new_id() -> None:
    a, b = cs(phase="Provisioned"), cs(phase="Provisioned", ready=True)
    first, _ = run([a, b, a, b])
    again, _ = run([a, b, a, b])
    assert [e.id for e in first] == [e.id for e in again]
    summaries = [e for e in first if e.type == "k8s.cluster.status"]
    assert len({e.id for e in summaries}) == 4
    assert [e.type for e in first].count("cluster.ready") == 2


def test_a_restart_republishes_the_same_id_and_no_transition() -> None:
    envs, _ = run([cs(phase="Provisioned"), cs(phase="Provisioned", ready=True)])
    # What a restarted watcher reads back: the last message of the subject.
    key, last = remembered(decode(envs[-1].encode()))  # type: ignore[misc]
    assert key == KEY
    again, after = plan(KEY, last, cs(phase="Provisioned", ready=True), source="t", republish=True)
    assert [(e.type, e.id) for e in again] == [("k8s.cluster.status", envs[-1].id)]
    assert after == last
    # Without republish (not the first pass) nothing goes out at all.
    assert plan(KEY, last, cs(phase="Provisioned", ready=True), source="t")[0] == []


def test_a_transition_that_happened_while_down_is_published_once() -> None:
    envs, _ = run([cs(phase="Provisioned")])
    _, last = remembered(decode(envs[-1].encode()))  # type: ignore[misc]
    again, _ = plan(KEY, last, cs(phase="Provisioned", ready=True), source="t", republish=True)
    assert [e.type for e in again] == ["cluster.ready", "k8s.cluster.status"]


def test_dying_between_transition_and_summary_neither_repeats_the_transition_nor_reuses_an_id() -> None:
    envs, _ = run([cs(phase="Provisioned"), cs(phase="Provisioned", ready=True)])
    transition = envs[1]
    _, last = remembered(decode(transition.encode()))  # type: ignore[misc]
    assert last.digest is None and last.ready
    again, _ = plan(KEY, last, cs(phase="Provisioned", ready=True), source="t", republish=True)
    assert [e.type for e in again] == ["k8s.cluster.status"]
    assert again[0].id not in {e.id for e in envs}


def test_a_tombstone_is_published_once_with_the_last_pr_id() -> None:
    envs, last = run([cs(phase="Provisioned"), ClusterSummary(namespace="default", name="c1", exists=False)])
    assert isinstance(envs[-1].payload, ClusterSummary) and not envs[-1].payload.exists
    assert envs[-1].payload.pr_id == PR
    assert plan(KEY, last, ClusterSummary(namespace="default", name="c1", exists=False), source="t")[0] == []
    never, _ = plan(KEY, None, ClusterSummary(namespace="default", name="c1", exists=False), source="t")
    assert never == []


def test_a_resource_version_change_without_a_summary_change_publishes_nothing() -> None:
    key = StatusKey("byohost", "default", "host-1")
    first, last = plan(key, None, summarize_byohost("default", "host-1", o.byohost("host-1")), source="t")
    bumped = o.byohost("host-1", rv="99")
    assert plan(key, last, summarize_byohost("default", "host-1", bumped), source="t")[0] == []
    assert len(first) == 1
