"""One sandbox host: identity, facts, recorded state, its vfs, and running a client's command line."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .facts import HostFacts
from .faults import Fault
from .latency import FAST, LatencyProfile
from .seed import ROOT_DIR, init_host_dir, read_identity
from .shell import Shell
from .shellio import SECURE_PATH, Hangup, Io, SessionStdin, Trace
from .shims import BufferSink
from .shims.sysctl import parse_conf
from .state import STATE_FILE, HostState, write_atomically
from .vfs import FsError, HostFs, Vfs

if TYPE_CHECKING:
    from .agents import AgentSupervisor

_FORWARDED_ENV = re.compile(r"LANG|LANGUAGE|LC_[A-Z]+|TZ")


@dataclass
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class SandboxHost:
    """A host as seen from inside; the pool adds its SSH listener, faults and agent supervisor."""

    def __init__(
        self,
        directory: Path,
        *,
        host_id: str,
        host_name: str,
        ip: str,
        port: int,
        user: str,
        facts: HostFacts,
        state: HostState,
        mirror: Mapping[str, bytes] | None = None,
    ) -> None:
        self.directory = directory
        self.host_id = host_id
        self.host_name = host_name
        self.ip = ip
        self.port = port
        self.user = user
        self.facts = facts
        self.state = state
        self.vfs = Vfs(directory / ROOT_DIR)
        self.mirror: Mapping[str, bytes] = mirror or {}
        self.agents: AgentSupervisor | None = None
        self.fault: Fault | None = None
        self.latency: LatencyProfile = FAST
        self._fault_hits = 0
        self._save_lock = asyncio.Lock()
        #: Called after every state change (the pool uses it to persist and to wake waiters).
        self.on_change: Callable[[], None] | None = None

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        host_id: str,
        host_name: str,
        ip: str,
        port: int = 22,
        user: str = "root",
        facts: HostFacts | None = None,
        mirror: Mapping[str, bytes] | None = None,
    ) -> SandboxHost:
        """Initialize (or reopen) the state dir; blocking file I/O, so call it off the event loop."""
        facts = facts or HostFacts()
        state = init_host_dir(directory, host_id=host_id, host_name=host_name, ip=ip, user=user, facts=facts, port=port)
        return cls(
            directory,
            host_id=host_id,
            host_name=host_name,
            ip=ip,
            port=port,
            user=user,
            facts=facts,
            state=state,
            mirror=mirror,
        )

    @classmethod
    def load(cls, directory: Path, *, user: str | None = None) -> SandboxHost:
        ident = read_identity(directory)
        facts_data = ident.get("facts")
        facts = HostFacts.from_json(facts_data) if isinstance(facts_data, dict) else HostFacts()
        return cls(
            directory,
            host_id=str(ident["host_id"]),
            host_name=str(ident["host_name"]),
            ip=str(ident["ip"]),
            port=int(str(ident.get("port", 22))),
            user=user or str(ident.get("user", "root")),
            facts=facts,
            state=HostState.load(directory / STATE_FILE),
        )

    # -- what shims see -------------------------------------------------------------------------

    @property
    def login_user(self) -> str:
        return self.user

    def bootstrap_fault(self) -> str | None:
        if self.fault is not None and self.fault.kind == "bootstrap_failure":
            return self.fault.message
        return None

    def notify_changed(self, *, refresh: bool = True) -> None:
        """After a state change: recompute the derived views (unless nothing but the log changed), then tell the
        pool (persistence, waiters)."""
        if refresh or not self.state.derived:
            self.refresh_derived()
        if self.on_change is not None:
            self.on_change()

    # -- faults ---------------------------------------------------------------------------------

    def command_fault(self, command: str) -> Fault | None:
        """The command fault that fires for this command line (counting ``times``)."""
        fault = self.fault
        if fault is None or not fault.matches(command):
            return None
        if fault.times is not None and self._fault_hits >= fault.times:
            return None
        self._fault_hits += 1
        return fault

    def set_fault(self, fault: Fault | None) -> None:
        self.fault = fault
        self._fault_hits = 0

    # -- running commands -----------------------------------------------------------------------

    def login_env(self, client_env: Mapping[str, str] | None = None) -> dict[str, str]:
        home = "/root" if self.user == "root" else f"/home/{self.user}"
        env = {
            "HOME": home,
            "USER": self.user,
            "LOGNAME": self.user,
            "SHELL": "/bin/bash",
            "PATH": SECURE_PATH,
            "LANG": "C.UTF-8",
            "PWD": home,
        }
        for key, value in (client_env or {}).items():
            if _FORWARDED_ENV.fullmatch(key):
                env[key] = value
        return env

    async def run_command(
        self,
        command: str,
        *,
        stdin: Callable[[], Awaitable[bytes]] | None = None,
        env: Mapping[str, str] | None = None,
        hangup: asyncio.Event | None = None,
        source: str = "ssh",
    ) -> CommandResult:
        """Interpret one client command line, record it, and persist the state."""
        trace = Trace()
        login_env = self.login_env(env)
        shell = Shell(self, user=self.user, env=login_env, cwd=login_env["HOME"], trace=trace, hangup=hangup)
        out, err = BufferSink(), BufferSink()
        try:
            status = await shell.run_script(command, Io(SessionStdin(stdin), out, err))
        except Hangup:
            status = 129
        self.state.record(
            command,
            user=self.user,
            exit_code=status,
            changed=trace.changed,
            source=source,
            steps=trace.steps,
            stderr=bytes(err.data),
        )
        # Derived views come from files and services, which only a command that changed the host can have
        # touched (change flags are exact); re-reading them after every query was a sixth of a command's cost.
        self.notify_changed(refresh=trace.changed)
        return CommandResult(status, bytes(out.data), bytes(err.data))

    def record_fault(self, command: str, fault: Fault, exit_code: int, stderr: bytes = b"") -> None:
        self.state.record(command, user=self.user, exit_code=exit_code, changed=False, stderr=stderr, fault=fault.kind)
        self.notify_changed(refresh=False)

    # -- derived views and persistence ----------------------------------------------------------

    def refresh_derived(self) -> None:
        fs = HostFs(self.vfs, self.state, self.facts, "root")
        derived = self.state.derived
        derived["modules_persisted"] = sorted(_modules_persisted(fs))
        derived["sysctls_persisted"] = _sysctls_persisted(fs)
        derived["fstab_swap"] = _fstab_swap(fs)
        derived["hosts_has_hostname"] = _hosts_has(fs, self.state.hostname)
        derived["containerd_systemd_cgroup"] = _containerd_systemd_cgroup(fs)
        self.state.note_kubelet()

    def save_sync(self) -> None:
        write_atomically(self.directory / STATE_FILE, self.state.dumps())

    async def save(self) -> None:
        text = self.state.dumps()
        async with self._save_lock:
            await asyncio.to_thread(write_atomically, self.directory / STATE_FILE, text)


def _read_text(fs: HostFs, path: str) -> str:
    try:
        return fs.read(path).decode("utf-8", "replace")
    except FsError:
        return ""


def _list(fs: HostFs, directory: str, suffix: str) -> list[str]:
    try:
        return [f"{directory}/{n}" for n in fs.listdir(directory) if n.endswith(suffix)]
    except FsError:
        return []


def _modules_persisted(fs: HostFs) -> set[str]:
    names: set[str] = set()
    for path in ["/etc/modules", *_list(fs, "/etc/modules-load.d", ".conf")]:
        for raw in _read_text(fs, path).splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith(";"):
                names.add(line.split()[0])
    return names


def _sysctls_persisted(fs: HostFs) -> dict[str, str]:
    values: dict[str, str] = {}
    for path in sorted(_list(fs, "/etc/sysctl.d", ".conf"), key=lambda p: p.rsplit("/", 1)[1]):
        for key, value, _ignore in parse_conf(_read_text(fs, path)):
            values[key.replace("/", ".")] = value
    return values


def _fstab_swap(fs: HostFs) -> list[str]:
    out = []
    for raw in _read_text(fs, "/etc/fstab").splitlines():
        fields = raw.split()
        if len(fields) >= 3 and fields[2] == "swap" and not fields[0].startswith("#"):
            out.append(fields[0])
    return out


def _hosts_has(fs: HostFs, hostname: str) -> bool:
    for raw in _read_text(fs, "/etc/hosts").splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 2 and hostname in fields[1:]:
            return True
    return False


def _containerd_systemd_cgroup(fs: HostFs) -> bool | None:
    text = _read_text(fs, "/etc/containerd/config.toml")
    if not text:
        return None
    m = re.search(r"^\s*SystemdCgroup\s*=\s*(true|false)", text, re.MULTILINE)
    return m is not None and m.group(1) == "true"
