"""Hostile bus messages against the whole system: every payload type, refused by the service that consumes it.

#15 Must show: every bus message type, sent with hostile identifiers (newlines, zone ids, homoglyphs,
overlong strings, terminal control sequences; ``tests.hostile``), to the real services on a real
nats-server, is terminated with exactly one ``message.failed`` naming the field, at the first delivery,
and no host command and no Kubernetes write happens. Each message goes to the subject its type normally
travels on (a ``k8s.byohost.status`` has no consumer of its own: it goes to the cluster-status consumer of
the same stream). Every case carries its own PR id (or object name) in its subject, so each refusal is
matched to its message by the subject it names.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.errors import InputError
from shared.messages import decode
from shared.payloads import MessageFailed
from shared.subjects import (
    FOCOM_REQUESTS,
    capi_event,
    capi_job,
    focom_status,
    hostprep_event,
    hostprep_job,
    k8s_status,
    o2ims_request,
    o2ims_status,
    timer,
)
from tests.e2e.harness import Stack, StackOptions, eventually
from tests.hostile import CASES

pytestmark = pytest.mark.e2e

OPTIONS = StackOptions(clusters=1, hosts_per_cluster=1, spare_hosts=0)
#: Where each payload type travels (a function of a fresh token: a PR id, or an object name).
ROUTES = {
    "message.failed": hostprep_event,
    "focom.request": lambda _token: FOCOM_REQUESTS,
    "focom.decision": lambda _token: FOCOM_REQUESTS,
    "focom.status": lambda token: focom_status(f"fpr-{token[:8]}"),
    "o2ims.request": o2ims_request,
    "o2ims.status": o2ims_status,
    "o2ims.deadline": timer,
    "hostprep.job": hostprep_job,
    "hostprep.host.progress": hostprep_event,
    "hostprep.job.done": hostprep_event,
    "hostprep.job.failed": hostprep_event,
    "capi.job": capi_job,
    "capi.applied": capi_event,
    "capi.deleted": capi_event,
    "capi.failed": capi_event,
    "k8s.cluster.status": lambda token: k8s_status("cluster", "default", f"c-{token[:8]}"),
    "cluster.ready": lambda token: k8s_status("cluster", "default", f"c-{token[:8]}"),
    "cluster.failed": lambda token: k8s_status("cluster", "default", f"c-{token[:8]}"),
    "k8s.byohost.status": lambda token: k8s_status("cluster", "default", f"h-{token[:8]}"),
}
FAILURE_SUBJECTS = ("focom.status.>", "o2ims.status.>", "hostprep.events.>", "capi.events.>")


class Failures:
    """Every ``message.failed`` published on a failure subject, by the subject of the message it reports."""

    def __init__(self) -> None:
        self.by_subject: dict[str, list[MessageFailed]] = {}
        self.arrived = asyncio.Event()

    async def on_msg(self, msg: Any) -> None:
        try:
            env = decode(msg.data)
        except InputError:
            return  # one of the hostile messages themselves (they travel on the same subjects)
        if isinstance(env.payload, MessageFailed):
            self.by_subject.setdefault(env.payload.subject, []).append(env.payload)
            self.arrived.set()


async def kube_revision(stack: Stack) -> str:
    """The emulator's cluster-wide resourceVersion: it moves with every write of any object."""
    _, revision = await stack.kube.list("v1", "ConfigMap")
    return revision


def host_logs(stack: Stack) -> dict[str, int]:
    return {h["host_id"]: len(stack.host_state(h["host_id"])["log"]) for h in stack.inventory["hosts"]}


async def test_every_message_type_with_hostile_identifiers_is_refused_naming_the_field(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", OPTIONS) as stack:
        failures = Failures()
        for pattern in FAILURE_SUBJECTS:
            await stack.bus.nc.subscribe(pattern, cb=failures.on_msg)
        commands, revision = host_logs(stack), await kube_revision(stack)
        focom_requests_before = 0
        wrong: dict[str, Any] = {}
        for case in CASES:
            token = str(uuid.uuid4())
            subject = ROUTES[case.type](token)
            env = case.envelope()
            if isinstance(env.get("payload"), dict) and "pr_id" in env["payload"] and case.path != "payload.pr_id":
                env["payload"]["pr_id"] = token  # the subject's PR, so a consumer checking it sees the same one
            data = json.dumps(env).encode()
            await stack.bus.js.publish(subject, data, headers={"Nats-Msg-Id": env["id"]}, timeout=10)

            skip = focom_requests_before if subject == FOCOM_REQUESTS else 0

            async def refused(subject: str = subject, skip: int = skip) -> list[MessageFailed]:
                return failures.by_subject.get(subject, [])[skip:]

            got = await eventually(refused, 40, f"the refusal of {case.name}", wake=failures.arrived)
            if subject == FOCOM_REQUESTS:
                focom_requests_before += 1
            failed = got[0]
            if (failed.reason, failed.path, failed.deliveries) != ("InvalidMessage", case.path, 1):
                wrong[case.name] = (failed.reason, failed.path, failed.deliveries, failed.error[:200])
        assert wrong == {}, "\n".join(f"{k}: {v}" for k, v in wrong.items())
        # Exactly one refusal per message, however long we look.
        await stack.bus.nc.flush()
        assert sum(len(v) for v in failures.by_subject.values()) == len(CASES)
        assert all(len(v) == 1 for s, v in failures.by_subject.items() if s != FOCOM_REQUESTS)
        # Nothing reached a host or the management cluster, and every service stayed healthy and quiet.
        assert host_logs(stack) == commands
        assert await kube_revision(stack) == revision
        for name in stack.services:
            assert stack.child(name).restarts == 0, f"{name} restarted"
            assert await stack.ready(name), f"{name} is not ready"
            errors = [r for r in stack.log_records(name) if r.get("level") in ("error", "critical")]
            assert errors == [], f"{name} logged errors: {errors[:3]}"


def test_every_hostile_case_has_a_route() -> None:
    assert {c.type for c in CASES} == set(ROUTES)
