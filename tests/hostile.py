"""Hostile bus messages: for every payload type, envelopes whose identifiers carry an attack, and the field each names.

Each case is one valid envelope (``valid(type)``) with exactly one field replaced by a hostile value: a
newline that would start a new line of a unit file or manifest, an IPv6 zone id (``%`` and whatever follows),
a homoglyph (a Cyrillic letter that looks like a Latin one), an overlong string, or a terminal control
sequence in free text. The bytes are built by hand (the models would refuse to build them) and carry the
path the refusal must name, in ``shared.messages.decode``'s spelling (``payload.namespace``).
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

PR = "6d1f1c6e-3f6a-5b8e-9d55-00000000beef"
MESSAGE_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
AT = "2026-01-01T00:00:00Z"
#: The namespace from the security review: a newline ends ExecStart= and starts a new root command.
ISSUE_NAMESPACE = 'x\'\nExecStartPre=/bin/sh -c "id > /root/pwned"\nX-Ignored='
NEWLINE = "c1\nExecStartPre=/bin/sh -c id"
ZONE = "fe80::1%eth0\nx"
ZONE_NET = "fe80::%eth0;id/64"
#: "default" with a Cyrillic small ie (U+0435) for its "e".
HOMOGLYPH = "d\u0435fault"
OVERLONG = "a" * 5000
TERMINAL = "done\x1b]0;pwned\x07\x1b[2J\r"

HOST = {"host_id": "h1", "host_name": "node-1", "host_ip": "10.10.0.11", "ssh_port": 22, "ssh_user": "root"}
SPEC = {
    "name": "c1",
    "namespace": "default",
    "k8s_version": "v1.30.2",
    "control_plane": [HOST],
    "workers": [],
    "vip": "10.10.0.100",
    "pod_cidr": "10.244.0.0/16",
    "service_cidr": "10.96.0.0/12",
    "cni": None,
}

VALID: dict[str, dict[str, Any]] = {
    "message.failed": {
        "consumer": "o2ims-events",
        "subject": f"hostprep.events.{PR}",
        "message_id": MESSAGE_ID,
        "message_type": "hostprep.job",
        "reason": "CommandFailed",
        "error": "exit status 1",
        "path": "payload.hosts",
        "deliveries": 1,
    },
    "focom.request": {"name": "fpr-1", "operation": "create", "clusterNames": ["c1"]},
    "focom.decision": {"name": "fpr-1", "decision": "approve", "by": "alice"},
    "focom.status": {
        "name": "fpr-1",
        "phase": "Creating",
        "message": "",
        "updated_at": AT,
        "children": [{"cluster": "c1", "pr_id": PR, "state": "pending"}],
    },
    "o2ims.request": {"pr_id": PR, "fpr": "fpr-1", "operation": "create", "spec": SPEC},
    "o2ims.status": {"pr_id": PR, "fpr": "fpr-1", "cluster": "c1", "state": "pending", "at": AT},
    "o2ims.deadline": {"pr_id": PR, "seq": 1, "state": "pending", "deadline": AT},
    "hostprep.job": {
        "pr_id": PR,
        "action": "prepare",
        "cluster": "c1",
        "namespace": "default",
        "k8s_version": "v1.30.2",
        "hosts": ["h1"],
    },
    "hostprep.host.progress": {"pr_id": PR, "host_id": "h1", "step": "preflight", "status": "done", "detail": "ok"},
    "hostprep.job.done": {"pr_id": PR, "action": "prepare", "hosts": ["h1"]},
    "hostprep.job.failed": {
        "pr_id": PR,
        "action": "prepare",
        "host_id": "h1",
        "step": "containerd",
        "reason": "CommandFailed",
        "message": "exit status 100",
        "stderr_tail": "E: x",
    },
    "capi.job": {"pr_id": PR, "action": "apply", "spec": SPEC},
    "capi.applied": {
        "pr_id": PR,
        "action": "apply",
        "objects": [
            {"api_version": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "namespace": "default", "name": "c1"}
        ],
    },
    "capi.deleted": {"pr_id": PR, "cluster": "c1", "namespace": "default", "gone": True},
    "capi.failed": {"pr_id": PR, "action": "apply", "reason": "Invalid", "message": "422"},
    "k8s.cluster.status": {
        "namespace": "default",
        "name": "c1",
        "pr_id": PR,
        "phase": "Provisioned",
        "machines": {"c1-control-plane-abcde": "Running"},
    },
    "cluster.ready": {"namespace": "default", "name": "c1", "pr_id": PR},
    "cluster.failed": {"namespace": "default", "name": "c1", "pr_id": PR, "reason": "MachineFailed on Machine m1"},
    "k8s.byohost.status": {
        "namespace": "default",
        "name": "node-1",
        "host_id": "h1",
        "registered": True,
        "bootstrap_condition": "WaitingForMachineRefToBeAssigned",
    },
}


@dataclass(frozen=True)
class Case:
    type: str
    #: The hostile field as a path into the envelope (``payload.spec.vip``).
    path: str
    value: Any
    kind: str

    @property
    def name(self) -> str:
        return f"{self.type}:{self.path}:{self.kind}"

    def envelope(self, **fields: Any) -> dict[str, Any]:
        env: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "type": self.type,
            "schema_version": 1,
            "correlation_id": "fpr-1",
            "occurred_at": AT,
            "source": "attacker",
            "payload": {"type": self.type, **copy.deepcopy(VALID[self.type])},
            **fields,
        }
        _put(env, self.path.split("."), self.value)
        return env

    def encode(self, **fields: Any) -> bytes:
        return json.dumps(self.envelope(**fields)).encode()


def _put(obj: Any, parts: list[str], value: Any) -> None:
    for i, part in enumerate(parts[:-1]):
        obj = (
            obj[int(part)] if isinstance(obj, list) else obj.setdefault(part, {} if not parts[i + 1].isdigit() else [])
        )
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def valid(type_: str) -> bytes:
    """The untouched envelope of ``type_`` (must decode)."""
    return Case(type_, "source", "tester", "valid").encode()


_P = "payload"
#: (type, field path, hostile value, what kind of attack); every type has at least one identifier case.
CASES: tuple[Case, ...] = tuple(
    Case(*c)
    for c in (
        ("message.failed", f"{_P}.consumer", "o2ims-events\nx", "newline"),
        ("message.failed", f"{_P}.error", TERMINAL, "control"),
        ("message.failed", f"{_P}.message_id", "../../etc", "traversal"),
        ("focom.request", f"{_P}.name", "fpr-1\n", "newline"),
        ("focom.request", f"{_P}.clusterNames.0", "c\u04351", "homoglyph"),
        ("focom.request", f"{_P}.templateName", OVERLONG, "overlong"),
        ("focom.decision", f"{_P}.name", "fpr-1\n", "newline"),
        ("focom.decision", f"{_P}.decision", "approve-all", "not-a-decision"),
        ("focom.decision", f"{_P}.by", OVERLONG, "overlong"),
        ("focom.status", f"{_P}.name", HOMOGLYPH, "homoglyph"),
        ("focom.status", f"{_P}.children.0.pr_id", "pr-1", "not-a-uuid"),
        ("o2ims.request", f"{_P}.pr_id", PR.upper(), "not-canonical"),
        ("o2ims.request", f"{_P}.fpr", OVERLONG, "overlong"),
        ("o2ims.request", f"{_P}.spec.vip", ZONE, "zone-id"),
        ("o2ims.request", f"{_P}.spec.namespace", ISSUE_NAMESPACE, "newline"),
        ("o2ims.status", f"{_P}.cluster", NEWLINE, "newline"),
        ("o2ims.status", f"{_P}.message", TERMINAL, "control"),
        ("o2ims.deadline", f"{_P}.pr_id", f"{PR}\n", "newline"),
        ("hostprep.job", f"{_P}.namespace", ISSUE_NAMESPACE, "newline"),
        ("hostprep.job", f"{_P}.namespace", HOMOGLYPH, "homoglyph"),
        ("hostprep.job", f"{_P}.cluster", "c" * 41, "overlong"),
        ("hostprep.job", f"{_P}.hosts.0", "h1%eth0", "zone-id"),
        ("hostprep.job", f"{_P}.hosts.0", {**HOST, "host_ip": "10.10.0.12"}, "address-in-message"),
        ("hostprep.job", f"{_P}.k8s_version", "v\u0661.\u0663\u0660.\u0662", "unicode-digits"),
        ("hostprep.host.progress", f"{_P}.host_id", "h\u04351", "homoglyph"),
        ("hostprep.host.progress", f"{_P}.detail", TERMINAL, "control"),
        ("hostprep.job.done", f"{_P}.hosts.0", "h1\n", "newline"),
        ("hostprep.job.failed", f"{_P}.stderr_tail", TERMINAL, "control"),
        ("hostprep.job.failed", f"{_P}.reason", OVERLONG, "overlong"),
        ("capi.job", f"{_P}.spec.namespace", HOMOGLYPH, "homoglyph"),
        ("capi.job", f"{_P}.spec.control_plane.0.host_ip", ZONE, "zone-id"),
        ("capi.job", f"{_P}.spec.pod_cidr", ZONE_NET, "zone-id"),
        ("capi.job", f"{_P}.spec.cni", "calico\nkind: ClusterRoleBinding", "newline"),
        ("capi.applied", f"{_P}.objects.0.name", NEWLINE, "newline"),
        ("capi.deleted", f"{_P}.cluster", "c\u04351", "homoglyph"),
        ("capi.deleted", f"{_P}.namespace", OVERLONG, "overlong"),
        ("capi.failed", f"{_P}.message", "x\x00y", "control"),
        ("k8s.cluster.status", f"{_P}.name", NEWLINE, "newline"),
        ("k8s.cluster.status", f"{_P}.pr_id", "pr-1", "not-a-uuid"),
        ("k8s.cluster.status", f"{_P}.phase", "Provisioned\n", "newline"),
        ("cluster.ready", f"{_P}.namespace", HOMOGLYPH, "homoglyph"),
        ("cluster.failed", f"{_P}.reason", TERMINAL, "control"),
        ("k8s.byohost.status", f"{_P}.host_id", "h1\n", "newline"),
        ("k8s.byohost.status", f"{_P}.name", OVERLONG, "overlong"),
        ("o2ims.status", "correlation_id", "fpr-1\nx", "newline"),
        ("capi.job", "source", "capi\x1b[2J", "control"),
    )
)
