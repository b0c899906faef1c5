"""The plumbing of the sandbox shell: I/O of a command, redirections into the vfs, options, the trace."""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .expand import Expander
from .shims import NullSink, Sink
from .syntax import Redir
from .vfs import FsError, HostFs, normalize

SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExitShell(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Hangup(Exception):
    """The client went away (SIGHUP for a real shell)."""


class SessionStdin:
    """The session's stdin, read in full only when a command actually consumes it."""

    def __init__(self, reader: Callable[[], Awaitable[bytes]] | None) -> None:
        self._reader = reader
        self._data: bytes | None = None

    async def read(self) -> bytes:
        if self._data is None:
            self._data = await self._reader() if self._reader else b""
        return self._data


Input = bytes | SessionStdin


async def read_input(inp: Input) -> bytes:
    return inp if isinstance(inp, bytes) else await inp.read()


@dataclass
class Io:
    stdin: Input
    out: Sink
    err: Sink


@dataclass
class Options:
    errexit: bool = False
    nounset: bool = False
    pipefail: bool = False
    xtrace: bool = False


@dataclass
class Trace:
    """What one client command line did: its steps and whether anything changed."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False


class FileSink:
    """A redirection target: checked when opened, written (once, so change detection is exact) when closed."""

    def __init__(self, fs: HostFs, vpath: str, append: bool) -> None:
        if fs.is_dir(vpath):
            raise FsError(errno.EISDIR, vpath)
        if not fs.is_dir(normalize(vpath + "/..")):
            raise FsError(errno.ENOENT, vpath)
        if not fs.can_write(vpath):
            raise FsError(errno.EACCES, vpath)
        self.fs, self.vpath, self.append = fs, vpath, append
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> bool:
        return self.fs.write(self.vpath, bytes(self.data), append=self.append)


def apply_redirs(fs: HostFs, cwd: str, expander: Expander, redirs: list[Redir], io: Io, sinks: list[FileSink]) -> Io:
    """The command's I/O after its redirections (file sinks opened now are appended to ``sinks``)."""
    fds: dict[int, Sink] = {1: io.out, 2: io.err}
    stdin: Input = io.stdin

    def open_sink(target: str, append: bool) -> Sink:
        vpath = normalize(target, cwd)
        if vpath == "/dev/null":
            return NullSink()
        if vpath == "/dev/stdout":
            return fds[1]
        if vpath == "/dev/stderr":
            return fds[2]
        sink = FileSink(fs, vpath, append)
        sinks.append(sink)
        return sink

    for r in redirs:
        if r.op == "<<":
            assert r.heredoc is not None
            doc = r.heredoc
            stdin = (expander.string(doc.body_word) if doc.body_word else doc.body).encode()
            continue
        assert r.target is not None
        target = expander.string(r.target)
        if r.op in (">&", "<&"):
            if target == "-":
                fds[r.fd] = NullSink()
            elif target.isdigit() and int(target) in fds:
                fds[r.fd] = fds[int(target)]
            elif r.op == ">&":
                fds[1] = fds[2] = open_sink(target, append=False)
            continue
        if r.op == "<":
            vpath = normalize(target, cwd)
            if vpath != "/dev/stdin":
                stdin = fs.read(vpath)
            continue
        sink = open_sink(target, append=r.op == ">>")
        if r.op == "&>":
            fds[1] = fds[2] = sink
        else:
            fds[r.fd] = sink
    return Io(stdin, fds[1], fds[2])
