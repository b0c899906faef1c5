"""Pure logic of hostprep: host facts from the preflight output and their validation, the retry
policy, derived names, ByoHost readiness, and a job's result from its hosts' outcomes. No I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.fields import printable
from shared.models import version_tuple
from shared.objects import CLUSTER_NAME_LABEL, K8S_VERSION_LABEL
from shared.payloads import HostFailure, HostprepDone, HostprepFailed, HostprepJob

#: Separates the sections of a multi-command probe's output (``echo`` of it between commands).
MARK = "@@o2ims-section@@"
GIB = 1024**3
SUPPORTED_OS: Mapping[str, tuple[str, ...]] = {"ubuntu": ("20.04", "22.04", "24.04"), "debian": ("11", "12")}
DEB_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
CGROUP_V2, CGROUP_V1 = "cgroup2fs", "tmpfs"
MIN_KERNEL = (4, 19)
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAIL_LINES = 10
BOOTSTRAP_CONDITION = "K8sNodeBootstrapSucceeded"
WAITING_REASON = "WaitingForMachineRefToBeAssigned"


def sections(stdout: str) -> list[str]:
    """Split a probe's output at the marker lines (see :data:`MARK`)."""
    parts: list[list[str]] = [[]]
    for line in stdout.splitlines():
        if line.strip() == MARK:
            parts.append([])
        else:
            parts[-1].append(line)
    return ["\n".join(p) for p in parts]


def tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ── preflight facts ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class HostFacts:
    """What the preflight step learned about a host; later steps put these values in literally."""

    os_id: str
    os_version: str
    os_pretty: str
    machine: str
    kernel: str
    cgroup_fs: str
    default_route: str
    hostname: str
    free_bytes: int | None

    @property
    def arch(self) -> str:
        """The Debian/Go architecture name (amd64, arm64)."""
        return DEB_ARCH.get(self.machine, self.machine)

    def summary(self) -> str:
        free = f"{self.free_bytes / GIB:.1f} GiB free" if self.free_bytes is not None else "free disk unknown"
        return f"{self.os_pretty}, {self.arch}, kernel {self.kernel}, {self.cgroup_fs}, {free}"


def _os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip().strip("\"'")
    return out


def _free_bytes(df_output: str) -> int | None:
    lines = [ln for ln in df_output.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None


def parse_preflight(stdout: str) -> HostFacts:
    """Facts from the preflight probe's sections: os-release, uname -m, uname -r, cgroup fs, route, hostname, df."""
    parts = sections(stdout) + [""] * 7
    osr = _os_release(parts[0])
    return HostFacts(
        os_id=osr.get("ID", "").lower(),
        os_version=osr.get("VERSION_ID", ""),
        os_pretty=osr.get("PRETTY_NAME", osr.get("ID", "unknown OS")),
        machine=parts[1].strip(),
        kernel=parts[2].strip(),
        cgroup_fs=parts[3].strip(),
        default_route=parts[4].strip().splitlines()[0] if parts[4].strip() else "",
        hostname=parts[5].strip(),
        free_bytes=_free_bytes(parts[6]),
    )


def _kernel_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"^([0-9]+)\.([0-9]+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def fact_problems(facts: HostFacts, *, min_free_bytes: int) -> list[str]:
    """Why this host cannot become a Kubernetes node (empty when it can)."""
    problems: list[str] = []
    versions = SUPPORTED_OS.get(facts.os_id)
    if versions is None or facts.os_version not in versions:
        supported = ", ".join(f"{k} {'/'.join(v)}" for k, v in SUPPORTED_OS.items())
        problems.append(f"unsupported OS {facts.os_pretty!r} (supported: {supported})")
    if facts.machine not in DEB_ARCH:
        problems.append(f"unsupported architecture {facts.machine!r}")
    kernel = _kernel_version(facts.kernel)
    if kernel is None or kernel < MIN_KERNEL:
        problems.append(f"kernel {facts.kernel!r} is older than {MIN_KERNEL[0]}.{MIN_KERNEL[1]}")
    if facts.cgroup_fs not in (CGROUP_V2, CGROUP_V1):
        problems.append(f"unknown cgroup filesystem {facts.cgroup_fs!r} on /sys/fs/cgroup")
    if not facts.default_route:
        problems.append("no default route (kubelet and kube-proxy need one)")
    if len(facts.hostname) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(facts.hostname):
        problems.append(f"hostname {facts.hostname!r} is not a lowercase DNS-1123 name (it becomes the node name)")
    if facts.free_bytes is None:
        problems.append("free disk space on /var is unknown")
    elif facts.free_bytes < min_free_bytes:
        problems.append(f"only {facts.free_bytes / GIB:.1f} GiB free on /var, need {min_free_bytes / GIB:.1f} GiB")
    return problems


# ── packages ───────────────────────────────────────────────────────────────────────────


def installed_packages(dpkg_output: str) -> dict[str, str]:
    """``{package: version}`` of installed packages from ``dpkg-query -f '${Status} ${Package} ${Version}\\n'``."""
    found: dict[str, str] = {}
    for line in dpkg_output.splitlines():
        words = line.split()
        if len(words) >= 5 and words[1] == "ok" and words[2] == "installed":
            found[words[3]] = words[4]
    return found


def package_version(k8s_version: str, revision: str) -> str:
    """``v1.30.2`` → ``1.30.2-<revision>`` (the pkgs.k8s.io Debian version)."""
    major, minor, patch = version_tuple(k8s_version)
    return f"{major}.{minor}.{patch}-{revision}"


def upstream(version: str) -> str:
    return version.rsplit(":", 1)[-1].split("-", 1)[0]


# ── names and the ByoHost ──────────────────────────────────────────────────────────────


def bootstrap_kubeconfig_name(host_id: str) -> str:
    """One BootstrapKubeconfig per host: a DNS-1123 name that differs for ids differing only in case or ``_``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", host_id.lower()).strip("-")[:40] or "host"
    digest = hashlib.sha256(host_id.encode()).hexdigest()[:8]
    return f"o2ims-{slug}-{digest}"


@dataclass(frozen=True)
class ByoHostState:
    name: str
    registered: bool
    free: bool
    claimed_by: str | None
    condition: str | None
    #: The ``o2ims.oran.org/k8s-version`` label its agent registered it with (None: no such label).
    version: str | None = None

    def describe(self) -> str:
        at = f" at {self.version}" if self.version else " without a version label"
        if self.claimed_by:
            return f"ByoHost {self.name} registered{at}, claimed by {self.claimed_by}"
        if self.free:
            return f"ByoHost {self.name} registered{at} and free"
        return f"ByoHost {self.name} exists{at} ({self.condition or 'no bootstrap condition yet'})"


def byohost_version(obj: Mapping[str, Any]) -> str | None:
    """The version label a ByoHost was registered with (set by its agent's ``--label``, only at registration)."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(K8S_VERSION_LABEL)
    return str(value) if value else None


def byohost_claimed(obj: Mapping[str, Any]) -> bool:
    """A ByoMachine claimed it (``status.machineRef``, or the cluster label BYOH sets with it and its agent
    clears last on release): it is, or is becoming, or was until a moment ago, a live node."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool((obj.get("status") or {}).get("machineRef") or labels.get(CLUSTER_NAME_LABEL))


def byohost_state(obj: Mapping[str, Any]) -> ByoHostState:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    machine = status.get("machineRef") or {}
    cluster = (meta.get("labels") or {}).get(CLUSTER_NAME_LABEL)
    claimed_by = str(machine.get("name")) if machine.get("name") else (f"cluster {cluster}" if cluster else None)
    condition = next((c for c in status.get("conditions") or [] if c.get("type") == BOOTSTRAP_CONDITION), None)
    reason = condition.get("reason") if condition else None
    free = not claimed_by and condition is not None and condition.get("status") == "False" and reason == WAITING_REASON
    return ByoHostState(
        name=str(meta.get("name", "")),
        registered=condition is not None or bool(status.get("hostinfo")),
        free=free,
        claimed_by=claimed_by,
        condition=f"{BOOTSTRAP_CONDITION}={condition.get('status')}/{reason}" if condition else None,
        version=byohost_version(obj),
    )


# ── retries ────────────────────────────────────────────────────────────────────────────


def backoff(attempt: int, *, initial: float, maximum: float) -> float:
    """Delay before retry number ``attempt`` (1-based): doubling from ``initial``, capped."""
    return float(min(maximum, initial * 2.0 ** max(0, attempt - 1)))


# ── outcomes and the job result ────────────────────────────────────────────────────────


@dataclass(frozen=True)
class HostOutcome:
    host_id: str
    ok: bool
    step: str | None = None
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    stderr_tail: str | None = None
    #: Steps whose action ran (the others' checks passed).
    acted: tuple[str, ...] = field(default=())

    def failure(self) -> HostFailure:
        return HostFailure(
            host_id=self.host_id,
            step=self.step,
            reason=self.reason or "Failed",
            message=printable(self.message or ""),
            exit_code=self.exit_code,
            stderr_tail=printable(self.stderr_tail) if self.stderr_tail is not None else None,
        )


def job_result(job: HostprepJob, outcomes: Sequence[HostOutcome]) -> HostprepDone | HostprepFailed:
    """Done when every host is ready; otherwise failed, naming the first failed host (in job order)."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return HostprepDone(pr_id=job.pr_id, action=job.action, hosts=tuple(o.host_id for o in outcomes))
    first = failed[0]
    others = "" if len(failed) == 1 else f" (and {len(failed) - 1} more: {', '.join(o.host_id for o in failed[1:])})"
    return HostprepFailed(
        pr_id=job.pr_id,
        action=job.action,
        host_id=first.host_id,
        step=first.step,
        exit_code=first.exit_code,
        stderr_tail=printable(first.stderr_tail) if first.stderr_tail is not None else None,
        reason=first.reason or "Failed",
        # A host's answers (stderr, its journal) are foreign text: made printable before they travel.
        message=printable(
            f"{len(failed)} of {len(outcomes)} hosts failed; {first.host_id} at step {first.step}: "
            f"{first.message}{others}"
        ),
        failures=tuple(o.failure() for o in failed),
        ready_hosts=tuple(o.host_id for o in outcomes if o.ok),
    )
