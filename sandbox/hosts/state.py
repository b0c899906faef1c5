"""The recorded state of one sandbox host: what the client did to it, kept in memory and in ``state.json``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
_STDERR_TAIL_LINES = 5
#: The static pod manifest kubeadm writes on a control-plane node; the kubelet runs it while it exists.
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


@dataclass
class PackageRecord:
    version: str
    #: ``installed`` or ``config-files`` (removed, not purged).
    status: str = "installed"
    #: Installed as a dependency, not asked for by name.
    auto: bool = False


@dataclass
class ServiceRecord:
    enabled: bool = False
    #: ``active``, ``inactive`` or ``failed``.
    active: str = "inactive"
    start_count: int = 0
    restart_count: int = 0
    stop_count: int = 0
    #: ``package`` or ``unit-file``.
    source: str = "package"
    exec_start: str | None = None
    #: sha256 of the unit definition systemd loaded (None: not loaded yet).
    loaded_sha256: str | None = None
    #: The unit file changed on disk after it was loaded, and no daemon-reload followed.
    needs_daemon_reload: bool = False
    failure: str | None = None
    #: sha256 of the service's config file at its last (re)start, for services that have one.
    config_sha256: str | None = None


@dataclass
class FileRecord:
    sha256: str | None
    mode: int
    owner: str = "root:root"


@dataclass
class CommandRecord:
    seq: int
    command: str
    user: str
    exit_code: int
    changed: bool
    #: ``ssh`` (exec request), ``sftp``, ``agent`` (the BYOH agent simulator) or ``exec`` (behind real sshd).
    source: str = "ssh"
    steps: list[dict[str, Any]] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    fault: str | None = None


@dataclass
class HostState:
    """Everything a test may assert about a host; mutated only by shims, SFTP and the agent hooks."""

    host_id: str
    hostname: str
    packages: dict[str, PackageRecord] = field(default_factory=dict)
    holds: set[str] = field(default_factory=set)
    modules_loaded: set[str] = field(default_factory=set)
    sysctls: dict[str, str] = field(default_factory=dict)
    swap_active: list[str] = field(default_factory=list)
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    files: dict[str, FileRecord] = field(default_factory=dict)
    log: list[CommandRecord] = field(default_factory=list)
    journal: dict[str, list[str]] = field(default_factory=dict)
    #: Repositories indexed by the last ``apt-get update`` (e.g. ``k8s:1.30``).
    apt_indexed: list[str] = field(default_factory=list)
    kubeadm: str = "none"
    #: Every kubeadm init/join/reset, in order: {"action", "source" (agent|ssh), "ok", "detail"}.
    kubeadm_runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The kubelet over time: {"at" (ISO time), "active", "version" (of the running kubelet, None when
    #: stopped)}, one entry per change; a test reads the version skew at every moment from it.
    kubelet_timeline: list[dict[str, Any]] = field(default_factory=list)
    #: The version of the kube-apiserver static pod kubeadm last wrote (control-plane hosts).
    apiserver_version: str | None = None
    #: The running kube-apiserver over time, like ``kubelet_timeline``: it runs while the kubelet runs and
    #: its manifest exists (``kubeadm init`` or a control-plane join wrote it, a reset removed it).
    apiserver_timeline: list[dict[str, Any]] = field(default_factory=list)
    #: Views computed from files after each command (persisted modules/sysctls, fstab swap, ...).
    derived: dict[str, Any] = field(default_factory=dict)

    # -- queries used by tests and shims -------------------------------------------------------

    def installed(self, name: str) -> str | None:
        rec = self.packages.get(name)
        return rec.version if rec and rec.status == "installed" else None

    def held(self, name: str) -> bool:
        return name in self.holds

    def service(self, name: str) -> ServiceRecord:
        return self.services.setdefault(name, ServiceRecord())

    def mark(self) -> int:
        """A position in the command log; pass it to ``since`` to see what happened afterwards."""
        return len(self.log)

    def since(self, mark: int) -> list[CommandRecord]:
        return self.log[mark:]

    def changed_since(self, mark: int) -> list[CommandRecord]:
        return [rec for rec in self.log[mark:] if rec.changed]

    def record(
        self,
        command: str,
        *,
        user: str,
        exit_code: int,
        changed: bool,
        source: str = "ssh",
        steps: list[dict[str, Any]] | None = None,
        stderr: bytes = b"",
        fault: str | None = None,
    ) -> CommandRecord:
        tail = stderr.decode("utf-8", "replace").splitlines()[-_STDERR_TAIL_LINES:]
        rec = CommandRecord(
            seq=len(self.log) + 1,
            command=command,
            user=user,
            exit_code=exit_code,
            changed=changed,
            source=source,
            steps=steps or [],
            stderr_tail=tail,
            fault=fault,
        )
        self.log.append(rec)
        return rec

    def note_kubelet(self) -> None:
        """Append to ``kubelet_timeline`` / ``apiserver_timeline`` when the running kubelet or kube-apiserver
        (or its version) changed."""
        rec = self.services.get("kubelet")
        active = rec is not None and rec.active == "active"
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        _note(self.kubelet_timeline, at, active, self.installed("kubelet") if active else None)
        serving = active and APISERVER_MANIFEST in self.files and self.apiserver_version is not None
        _note(self.apiserver_timeline, at, serving, self.apiserver_version if serving else None)

    def timelines(self) -> HostTimelines:
        return HostTimelines(self.host_id, list(self.kubelet_timeline), list(self.apiserver_timeline))

    def journal_add(self, unit: str, line: str) -> None:
        self.journal.setdefault(unit, []).append(line)

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["holds"] = sorted(self.holds)
        data["modules_loaded"] = sorted(self.modules_loaded)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostState:
        return cls(
            host_id=data["host_id"],
            hostname=data["hostname"],
            packages={k: PackageRecord(**v) for k, v in data.get("packages", {}).items()},
            holds=set(data.get("holds", [])),
            modules_loaded=set(data.get("modules_loaded", [])),
            sysctls=dict(data.get("sysctls", {})),
            swap_active=list(data.get("swap_active", [])),
            services={k: ServiceRecord(**v) for k, v in data.get("services", {}).items()},
            files={k: FileRecord(**v) for k, v in data.get("files", {}).items()},
            log=[CommandRecord(**v) for v in data.get("log", [])],
            journal={k: list(v) for k, v in data.get("journal", {}).items()},
            apt_indexed=list(data.get("apt_indexed", [])),
            kubeadm=data.get("kubeadm", "none"),
            kubeadm_runs=list(data.get("kubeadm_runs", [])),
            warnings=list(data.get("warnings", [])),
            kubelet_timeline=list(data.get("kubelet_timeline", [])),
            apiserver_version=data.get("apiserver_version"),
            apiserver_timeline=list(data.get("apiserver_timeline", [])),
            derived=dict(data.get("derived", {})),
        )

    @classmethod
    def load(cls, path: Path) -> HostState:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _note(timeline: list[dict[str, Any]], at: str, active: bool, version: str | None) -> None:
    last = timeline[-1] if timeline else {"active": False, "version": None}
    if (last["active"], last["version"]) != (active, version):
        timeline.append({"at": at, "active": active, "version": version})


@dataclass(frozen=True)
class HostTimelines:
    """One host's running kubelet and kube-apiserver over time: entries {"at", "active", "version"}."""

    host_id: str
    kubelet: list[dict[str, Any]]
    apiserver: list[dict[str, Any]]


def read_timelines(hosts_dir: Path) -> dict[str, HostTimelines]:
    """Every sandbox host's timelines, by host id, from the ``state.json`` files under a pool's directory
    (works for a pool in another process: the files are written after every change)."""
    found: dict[str, HostTimelines] = {}
    for path in sorted(Path(hosts_dir).glob(f"*/{STATE_FILE}")):
        state = HostState.load(path)
        found[state.host_id] = state.timelines()
    return found


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a state file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(text)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
