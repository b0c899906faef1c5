"""Command shims: the programs a sandbox host offers, one module per command family.

A shim is a function ``(ctx: Ctx) -> int`` (or a coroutine) that reads ``ctx.argv``/``ctx.stdin``, writes
``ctx.out``/``ctx.err``, mutates the host state through ``ctx.fs``/``ctx.state`` and sets ``ctx.changed``
when it changed anything. ``registry()`` collects every module's ``SHIMS`` table.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..facts import HostFacts
from ..latency import LatencyProfile
from ..state import HostState
from ..vfs import FsError, HostFs, Vfs, normalize

if TYPE_CHECKING:
    from ..agents import AgentSupervisor
    from ..shell import Shell

ShimResult = int | Awaitable[int]
ShimFn = Callable[["Ctx"], ShimResult]


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class BufferSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class NullSink:
    def write(self, data: bytes) -> None:
        return None


class HostLike(Protocol):
    """What shims may use of a host (implemented by ``host.SandboxHost``)."""

    host_id: str
    host_name: str
    ip: str
    facts: HostFacts
    state: HostState
    vfs: Vfs
    mirror: Mapping[str, bytes]
    agents: AgentSupervisor | None
    #: CPU-free delays per command class (the pool's profile; all zero by default).
    latency: LatencyProfile

    @property
    def login_user(self) -> str: ...

    def bootstrap_fault(self) -> str | None: ...

    def notify_changed(self) -> None: ...


class ShimExit(Exception):
    """Raised by a shim helper to end the command with ``code`` after writing ``message`` to stderr."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Ctx:
    argv: list[str]
    env: dict[str, str]
    user: str
    cwd: str
    stdin: bytes
    out: Sink
    err: Sink
    host: HostLike
    shell: Shell
    changed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prog(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1]

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    @property
    def state(self) -> HostState:
        return self.host.state

    @property
    def facts(self) -> HostFacts:
        return self.host.facts

    @functools.cached_property
    def fs(self) -> HostFs:
        return HostFs(self.host.vfs, self.host.state, self.host.facts, self.user)

    def path(self, vpath: str) -> str:
        return normalize(vpath, self.cwd)

    def print(self, text: str = "", end: str = "\n") -> None:
        self.out.write((text + end).encode())

    def error(self, text: str) -> None:
        self.err.write((text + "\n").encode())

    def mark(self, changed: bool) -> None:
        self.changed = self.changed or changed

    def write_file(self, vpath: str, data: bytes, *, append: bool = False, mode: int | None = None) -> None:
        """Write and record; a failure becomes ``<prog>: <path>: <reason>`` and exit 1."""
        try:
            self.mark(self.fs.write(self.path(vpath), data, append=append, mode=mode))
        except FsError as exc:
            raise ShimExit(1, f"{self.prog}: {vpath}: {exc.strerror}") from None

    def read_file(self, vpath: str) -> bytes:
        try:
            return self.fs.read(self.path(vpath))
        except FsError as exc:
            raise ShimExit(1, f"{self.prog}: {vpath}: {exc.strerror}") from None


@dataclass(frozen=True)
class Shim:
    fn: ShimFn
    #: Where ``command -v`` finds it.
    path: str = ""
    #: The package that provides it (None: part of the base system, always present).
    package: str | None = None
    #: Whether the command reads stdin when given these arguments.
    reads_stdin: Callable[[list[str]], bool] = lambda _args: False


def needs_root(ctx: Ctx, message: str, code: int = 1) -> None:
    """Fail like the real tool does for an unprivileged user."""
    if not ctx.is_root:
        raise ShimExit(code, message)


def no_file_args(args: list[str]) -> bool:
    """True when no operand names a file (so the tool reads stdin), or one operand is ``-``."""
    operands = [a for a in args if not a.startswith("-") or a == "-"]
    return not operands or "-" in operands


@functools.cache
def registry() -> dict[str, Shim]:
    from . import (
        agent,
        apt,
        cond,
        containerd,
        dpkg,
        fetch,
        files,
        kmod,
        kube,
        net,
        sed,
        swap,
        sysctl,
        sysinfo,
        systemd,
        text,
    )

    table: dict[str, Shim] = {}
    modules = (
        files,
        text,
        sed,
        cond,
        apt,
        dpkg,
        systemd,
        kmod,
        sysctl,
        swap,
        net,
        sysinfo,
        kube,
        containerd,
        fetch,
        agent,
    )
    for module in modules:
        table.update(module.SHIMS)
    return table
