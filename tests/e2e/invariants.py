"""What must hold after a whole-system run, checked from the real records, each check returning its problems.

- outcome: each FPR Synced (or Failed when clusters were meant to fail), each cluster fulfilled or failed
  with a reason that names what is expected (host, cause);
- hosts (``state.json`` per sandbox host): no command changed a host twice (SFTP staging aside: the ``install``
  that applies an upload counts); a prepared host has one kubeadm
  run, one agent start, its hostname once in ``/etc/hosts`` and the exact, held Kubernetes packages;
- objects (the emulator, every uid ever seen per name): nothing created twice; one Machine per host;
- leases (``hosts`` bucket): every lease owned by a live PR that has the host in its spec;
- jobs: one hostprep job and at most one CAPI job per PR in the streams;
- streams: every durable consumer has nothing pending and nothing unacknowledged, except deadline timers
  that are nak'ed until due by design (o2ims): those must all be for deadlines still in the future;
- version skew (``skew_violations`` over ``sandbox_timelines``): at no moment a running kubelet newer than
  the oldest running kube-apiserver (a control plane's kubelet at its own kube-apiserver's version aside)
  or more than 3 minor versions older than the newest one.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.js.errors

from sandbox.hosts.state import HostState, HostTimelines, read_timelines
from shared.leases import QUARANTINE
from shared.messages import decode
from shared.payloads import PrDeadline
from shared.subjects import CAPI, HOSTPREP, O2IMS_TIMERS_CONSUMER, TIMERS
from tests.e2e.harness import Stack, eventually
from tests.e2e.objects import CLUSTER_LABEL

#: A repeated ``systemctl restart`` is the one action the sandbox always counts as a change.
_ALWAYS_CHANGES = ("systemctl restart",)
#: SFTP only stages uploads (a re-run after a kill may stage again); the ``install`` that applies one is checked.
_COUNTED_SOURCES = ("ssh", "exec")


def spec_hosts(pr: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = pr.get("spec") or {}
    return [*spec.get("control_plane", []), *spec.get("workers", [])]


def outcome_problems(name: str, rec: Mapping[str, Any] | None, failed: Mapping[str, Sequence[str]]) -> list[str]:
    """``failed``: cluster -> substrings its reason/message must contain; every other cluster is fulfilled."""
    if rec is None:
        return [f"FPR {name}: no record"]
    out = []
    want = "Failed" if failed else "Synced"
    if rec.get("phase") != want:
        out.append(f"FPR {name}: phase {rec.get('phase')} ({rec.get('message')}), expected {want}")
    for cluster, child in sorted((rec.get("children") or {}).items()):
        text = f"{child.get('reason')}: {child.get('message')}"
        if cluster in failed:
            if child.get("state") != "failed":
                out.append(f"{name}/{cluster}: {child.get('state')}, expected failed")
            missing = [s for s in failed[cluster] if s.lower() not in text.lower()]
            if missing:
                out.append(f"{name}/{cluster}: reason {text!r} does not name {missing}")
        elif child.get("state") != "fulfilled":
            out.append(f"{name}/{cluster}: {child.get('state')} ({text}), expected fulfilled")
    return out


def host_problems(stack: Stack, prs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = []
    for pr in prs.values():
        version = str((pr.get("spec") or {}).get("k8s_version", "")).lstrip("v")
        for host in spec_hosts(pr):
            host_id = host["host_id"]
            state = stack.host_state(host_id)
            changed = Counter(r["command"] for r in state["log"] if r["changed"] and r["source"] in _COUNTED_SOURCES)
            for command, n in changed.items():
                if n > 1 and not command.startswith(_ALWAYS_CHANGES):
                    out.append(f"{host_id}: changed twice by {command[:160]!r}")
            if pr.get("state") != "fulfilled":
                continue
            runs = state["kubeadm_runs"]
            if [r["action"] for r in runs] not in (["init"], ["join"]) or not all(r["ok"] for r in runs):
                out.append(f"{host_id}: kubeadm runs {runs}, expected one init or join")
            agent = state["services"].get("byoh-hostagent") or {}
            if (agent.get("active"), agent.get("start_count"), agent.get("restart_count")) != ("active", 1, 0):
                out.append(f"{host_id}: agent unit {agent}, expected active, started once, never restarted")
            lines = [
                ln for ln in stack.host_file(host_id, "/etc/hosts").splitlines() if host["host_name"] in ln.split()
            ]
            if len(lines) != 1:
                out.append(f"{host_id}: /etc/hosts names {host['host_name']} {len(lines)} times")
            for pkg in ("kubelet", "kubeadm", "kubectl"):
                got = (state["packages"].get(pkg) or {}).get("version")
                if got != f"{version}-1.1" or pkg not in state["holds"]:
                    out.append(f"{host_id}: {pkg} {got} held={pkg in state['holds']}, expected {version}-1.1 held")
    return out


def object_problems(stack: Stack, prs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    assert stack.recorder is not None, "run the stack with record_objects=True"
    out = [
        f"{kind} {ns}/{name} created {len(uids)} times"
        for (kind, ns, name), uids in sorted(stack.recorder.uids.items())
        if len(uids) > 1
    ]
    machines = Counter(
        labels.get(CLUSTER_LABEL) for (kind, _, _), labels in stack.recorder.labels.items() if kind == "Machine"
    )
    for pr in prs.values():
        cluster = (pr.get("spec") or {}).get("name")
        hosts = len(spec_hosts(pr))
        if pr.get("state") == "fulfilled" and machines[cluster] != hosts:
            out.append(f"cluster {cluster}: {machines[cluster]} Machines ever created for {hosts} hosts")
    return out


async def lease_problems(stack: Stack, prs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = []
    leases = await stack.leases()
    for host_id, owner in sorted(leases.items()):
        if owner == QUARANTINE:
            continue  # held on purpose: its teardown failed, an operator decides
        pr = prs.get(owner)
        if pr is None or pr.get("state") == "deleted" or pr.get("deleted_at"):
            out.append(f"lease of {host_id} leaked: owner {owner} is {'absent' if pr is None else 'deleted'}")
        elif host_id not in {h["host_id"] for h in spec_hosts(pr)}:
            out.append(f"lease of {host_id} held by {owner}, whose spec does not have it")
    for pr_id, pr in prs.items():
        if pr.get("state") == "fulfilled":
            missing = [h["host_id"] for h in spec_hosts(pr) if leases.get(h["host_id"]) != pr_id]
            if missing:
                out.append(f"fulfilled PR {pr_id} does not hold the leases of {missing}")
    return out


async def job_problems(stack: Stack, prs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = []
    for pr_id, pr in prs.items():
        hostprep = await stack.count(HOSTPREP.name, f"hostprep.jobs.{pr_id}")
        capi = await stack.count(CAPI.name, f"capi.jobs.{pr_id}")
        reached_capi = pr.get("state") == "fulfilled" or pr.get("stage") in ("apply", "provisioning")
        if hostprep != 1 or capi != (1 if reached_capi else 0):
            out.append(
                f"PR {pr_id} ({pr.get('state')}/{pr.get('stage')}): {hostprep} hostprep job(s), {capi} CAPI job(s)"
            )
    return out


async def _future_deadlines(stack: Stack, slack: float = 5.0) -> int:
    """Deadline timers in the TIMERS stream that are not due yet (they stay nak'ed until then)."""
    info = await stack.bus.js.stream_info(TIMERS.name)
    now = datetime.now(UTC) - timedelta(seconds=slack)
    pending = 0
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await stack.bus.js.get_msg(TIMERS.name, seq)
        except nats.js.errors.NotFoundError:
            continue
        payload = decode(msg.data or b"").payload
        if isinstance(payload, PrDeadline) and payload.deadline > now:
            pending += 1
    return pending


async def stream_problems(stack: Stack) -> list[str]:
    out = []
    timers = None
    for c in await stack.durables():
        allowed = 0
        if c.config.durable_name == O2IMS_TIMERS_CONSUMER.durable:
            timers = await _future_deadlines(stack) if timers is None else timers
            allowed = timers
        if c.num_pending or (c.num_ack_pending or 0) > allowed:
            out.append(
                f"{c.stream_name}/{c.config.durable_name}: {c.num_pending} pending, "
                f"{c.num_ack_pending} unacknowledged (allowed {allowed})"
            )
    return out


async def settle(stack: Stack, timeout: float = 90.0) -> None:
    """Wait until every durable consumer has caught up (``stream_problems`` is empty)."""

    async def quiet() -> bool:
        return not await stream_problems(stack)

    try:
        await eventually(quiet, timeout, "every durable consumer to catch up", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await stream_problems(stack)}") from None


async def _settled_host_problems(
    stack: Stack, prs: Mapping[str, Mapping[str, Any]], timeout: float = 15.0
) -> list[str]:
    """``host_problems`` once the hosts' records caught up: an agent records its kubeadm run a moment after
    CAPI (and so o2ims) may already count its node ready."""
    last: list[str] = []

    async def clean() -> bool:
        nonlocal last
        last = host_problems(stack, prs)
        return not last

    with contextlib.suppress(AssertionError):
        await eventually(clean, timeout, "the host records to settle", interval=0.5)
    return last


async def run_problems(stack: Stack, expected: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    """Every invariant for the FPRs in ``expected`` (name -> failed cluster -> words its reason must contain)."""
    await settle(stack)
    fprs = await stack.fprs()
    prs = {k: v for k, v in (await stack.prs()).items() if v.get("fpr") in expected}
    problems = []
    for name, failed in expected.items():
        problems += outcome_problems(name, fprs.get(name), failed)
    problems += await _settled_host_problems(stack, prs)
    if stack.recorder is not None:
        problems += object_problems(stack, prs)
    problems += await lease_problems(stack, await stack.prs())
    problems += await job_problems(stack, prs)
    problems += await stream_problems(stack)
    return problems


# ── Kubernetes version skew over time ────────────────────────────────────────────────────────────

#: How many minor versions a kubelet may lag behind the kube-apiserver (Kubernetes ≥ 1.28).
KUBELET_MAX_MINOR_LAG = 3
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def sandbox_timelines(stack: Stack) -> dict[str, HostTimelines]:
    """Every sandbox host's kubelet and kube-apiserver timelines, read from the hosts' ``state.json``."""
    return read_timelines(stack.state / "hosts")


def pool_timelines(states: Iterable[HostState]) -> dict[str, HostTimelines]:
    """The same from in-process host states (``{h.host_id: ...}`` of ``pool.hosts``)."""
    return {state.host_id: state.timelines() for state in states}


def _parse(version: Any) -> tuple[int, int, int] | None:
    m = _VERSION.match(str(version or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def skew_violations(timelines: Mapping[str, HostTimelines], hosts: Collection[str] | None = None) -> list[str]:
    """Every moment (each change of any timeline) at which a running kubelet was newer, by minor version as
    the skew policy counts, than the oldest running kube-apiserver (a control-plane host's kubelet at its own
    kube-apiserver's version aside), or more than ``KUBELET_MAX_MINOR_LAG`` minor versions older than the
    newest one. ``hosts``: the hosts of one cluster (default: all); kubelets talk to their own API servers."""
    chosen = {h: t for h, t in timelines.items() if hosts is None or h in hosts}
    changes = sorted(
        (str(entry["at"]), host, which, entry)
        for host, t in chosen.items()
        for which, entries in (("kubelet", t.kubelet), ("apiserver", t.apiserver))
        for entry in entries
    )
    kubelets: dict[str, tuple[int, int, int]] = {}
    apiservers: dict[str, tuple[int, int, int]] = {}
    out: list[str] = []
    for i, (at, host, which, entry) in enumerate(changes):
        running = kubelets if which == "kubelet" else apiservers
        version = _parse(entry.get("version")) if entry.get("active") else None
        if version is None:
            running.pop(host, None)
        else:
            running[host] = version
        if i + 1 < len(changes) and changes[i + 1][0] == at:
            continue  # judge a moment once every change made at that instant is in
        out += _moment_violations(at, kubelets, apiservers)
    return out


def _moment_violations(
    at: str, kubelets: Mapping[str, tuple[int, int, int]], apiservers: Mapping[str, tuple[int, int, int]]
) -> list[str]:
    if not apiservers:
        return []
    oldest_host, oldest = min(apiservers.items(), key=lambda kv: (kv[1], kv[0]))
    newest_host, newest = max(apiservers.items(), key=lambda kv: (kv[1], kv[0]))
    out = []
    for host, kubelet in sorted(kubelets.items()):
        text = "v" + ".".join(map(str, kubelet))
        # The skew policy counts minor versions: a kubelet at a newer patch of the same minor is supported.
        if kubelet[:2] > oldest[:2] and apiservers.get(host) != kubelet:
            out.append(
                f"{at}: kubelet {text} on {host} is newer than the kube-apiserver "
                f"v{'.'.join(map(str, oldest))} on {oldest_host}"
            )
        if kubelet[0] != newest[0] or newest[1] - kubelet[1] > KUBELET_MAX_MINOR_LAG:
            out.append(
                f"{at}: kubelet {text} on {host} is more than {KUBELET_MAX_MINOR_LAG} minor versions older than "
                f"the kube-apiserver v{'.'.join(map(str, newest))} on {newest_host}"
            )
    return out
