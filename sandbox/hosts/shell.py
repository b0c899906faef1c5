"""The sandbox shell: runs a parsed command line against one host, never touching a real shell.

Pipelines run their stages one after another (each stage's stdout becomes the next one's stdin);
redirections write through the host's vfs; every simple command is traced with its exit code and whether
it changed the host, which is what ``HostState.log`` records.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import replace

from .expand import Expander, ExpansionError
from .lookup import Resolved, resolve
from .parser import parse
from .shellio import ExitShell, FileSink, Hangup, Input, Io, Options, Trace, apply_redirs, read_input
from .shims import BufferSink, Ctx, HostLike, ShimExit
from .syntax import AndOr, CommandList, Group, If, Pipeline, Redir, ShellSyntaxError, Simple
from .vfs import FsError, HostFs

#: Command lines longer than this are parsed every time (an uploaded script is seldom run twice).
_CACHED_SOURCE_MAX = 16 * 1024


@functools.lru_cache(maxsize=512)
def _parse_shared(src: str) -> CommandList:
    return parse(src)


def parse_cached(src: str) -> CommandList:
    """``parse()``, remembering recent command lines: a fan-out sends the same lines to every host.

    The tree is shared between runs, which is safe because the interpreter never changes it.
    """
    return _parse_shared(src) if len(src) <= _CACHED_SOURCE_MAX else parse(src)


class Shell:
    def __init__(
        self,
        host: HostLike,
        *,
        user: str,
        env: dict[str, str],
        cwd: str,
        trace: Trace,
        hangup: asyncio.Event | None = None,
        positional: list[str] | None = None,
        options: Options | None = None,
    ) -> None:
        self.host = host
        self.user = user
        self.vars = dict(env)
        self.exported = set(env)
        self.cwd = cwd
        self.trace = trace
        self.hangup = hangup
        self.positional = positional or ["bash"]
        self.options = options or Options()
        self.last_status = 0
        self.in_condition = 0

    # -- construction helpers ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {k: v for k, v in self.vars.items() if k in self.exported}

    def child(
        self,
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        positional: list[str] | None = None,
        options: Options | None = None,
    ) -> Shell:
        return Shell(
            self.host,
            user=user or self.user,
            env=self.env() if env is None else env,
            cwd=self.cwd,
            trace=self.trace,
            hangup=self.hangup,
            positional=positional or self.positional,
            options=options or replace(self.options),
        )

    @functools.cached_property
    def fs(self) -> HostFs:
        # One per shell (its user never changes); asked for by every word and redirection.
        return HostFs(self.host.vfs, self.host.state, self.host.facts, self.user)

    def home(self) -> str:
        return "/root" if self.user == "root" else f"/home/{self.user}"

    def _expander(self) -> Expander:
        return Expander(self._lookup, self._assign, nounset=self.options.nounset, home=self.home())

    def _lookup(self, name: str) -> str | None:
        if name == "?":
            return str(self.last_status)
        if name == "#":
            return str(len(self.positional) - 1)
        if name in ("@", "*"):
            return " ".join(self.positional[1:])
        if name == "$":
            return "4242"
        if name == "!":
            return ""
        if name == "-":
            return "".join(f for f, on in (("e", self.options.errexit), ("u", self.options.nounset)) if on) + "hB"
        if name.isdigit():
            idx = int(name)
            return self.positional[idx] if idx < len(self.positional) else None
        return self.vars.get(name)

    def _assign(self, name: str, value: str) -> None:
        self.vars[name] = value

    # -- entry points --------------------------------------------------------------------------

    async def run_script(self, src: str, io: Io) -> int:
        try:
            tree = parse_cached(src)
        except ShellSyntaxError as exc:
            io.err.write(f"bash: {exc}\n".encode())
            self.trace.steps.append({"argv": ["bash"], "exit": 2, "changed": False, "error": str(exc)})
            return 2
        try:
            return await self.run_list(tree, io)
        except ExitShell as exc:
            return exc.code

    async def run_list(self, node: CommandList, io: Io) -> int:
        status = 0
        for item in node.items:
            status = await self.run_and_or(item, io)
        return status

    async def run_and_or(self, node: AndOr, io: Io) -> int:
        self.in_condition += bool(node.rest)
        try:
            status = await self.run_pipeline(node.first, io)
        finally:
            self.in_condition -= bool(node.rest)
        last = node.first
        for i, (op, pipe) in enumerate(node.rest):
            if (op == "&&") != (status == 0):
                continue
            is_last = i == len(node.rest) - 1
            self.in_condition += not is_last
            try:
                status = await self.run_pipeline(pipe, io)
            finally:
                self.in_condition -= not is_last
            last = pipe
        ran_last = last is (node.rest[-1][1] if node.rest else node.first)
        if status and self.options.errexit and not self.in_condition and ran_last and not last.negate:
            raise ExitShell(status)
        return status

    async def run_pipeline(self, node: Pipeline, io: Io) -> int:
        if len(node.commands) == 1:
            status = await self.run_command(node.commands[0], io)
        else:
            statuses: list[int] = []
            data: Input = io.stdin
            for i, cmd in enumerate(node.commands):
                last = i == len(node.commands) - 1
                sink = io.out if last else BufferSink()
                try:
                    statuses.append(await self.run_command(cmd, Io(data, sink, io.err)))
                except ExitShell as exc:
                    statuses.append(exc.code)
                if isinstance(sink, BufferSink):
                    data = bytes(sink.data)
            status = statuses[-1]
            if self.options.pipefail:
                status = next((s for s in reversed(statuses) if s), 0)
        if node.negate:
            status = 0 if status else 1
        self.last_status = status
        return status

    async def run_command(self, node: Simple | If | Group, io: Io) -> int:
        if isinstance(node, Simple):
            return await self.run_simple(node, io)
        if isinstance(node, If):
            return await self.with_redirs(node.redirs, io, lambda sub: self._run_if(node, sub))
        if node.subshell:
            child = self.child(env=dict(self.vars))
            child.exported = set(self.exported)

            async def run_sub(sub: Io) -> int:
                try:
                    return await child.run_list(node.body, sub)
                except ExitShell as exc:
                    return exc.code

            return await self.with_redirs(node.redirs, io, run_sub)
        return await self.with_redirs(node.redirs, io, lambda sub: self.run_list(node.body, sub))

    async def _run_if(self, node: If, io: Io) -> int:
        for cond, body in node.branches:
            self.in_condition += 1
            try:
                status = await self.run_list(cond, io)
            finally:
                self.in_condition -= 1
            if status == 0:
                return await self.run_list(body, io)
        return await self.run_list(node.orelse, io) if node.orelse else 0

    async def run_simple(self, node: Simple, io: Io) -> int:
        if self.hangup is not None and self.hangup.is_set():
            raise Hangup
        expander = self._expander()
        try:
            argv = [f for w in node.words for f in expander.fields(w, self.fs, self.cwd)]
            assigns = [(name, expander.string(w)) for name, w in node.assigns]
        except ExpansionError as exc:
            io.err.write(f"bash: {exc}\n".encode())
            raise ExitShell(1) from None
        if not argv:
            for name, value in assigns:
                self.vars[name] = value
            status = await self.with_redirs(node.redirs, io, _zero)
            self.last_status = status
            return status
        if self.options.xtrace:
            io.err.write(("+ " + " ".join(shlex.quote(a) for a in argv) + "\n").encode())
        status = await self.with_redirs(node.redirs, io, lambda sub: self.run_argv(argv, sub, dict(assigns)))
        self.last_status = status
        return status

    # -- redirections --------------------------------------------------------------------------

    async def with_redirs(self, redirs: list[Redir], io: Io, body: Callable[[Io], Awaitable[int]]) -> int:
        sinks: list[FileSink] = []
        try:
            sub = apply_redirs(self.fs, self.cwd, self._expander(), redirs, io, sinks)
        except FsError as exc:
            io.err.write(f"bash: {exc.vpath}: {exc.strerror}\n".encode())
            return 1
        except ExpansionError as exc:
            io.err.write(f"bash: {exc}\n".encode())
            return 1
        try:
            return await body(sub)
        finally:
            for sink in sinks:
                try:
                    changed = sink.close()
                except FsError as exc:
                    io.err.write(f"bash: {exc.vpath}: {exc.strerror}\n".encode())
                    changed = False
                self.trace.changed = self.trace.changed or changed
                if changed:
                    self.trace.steps.append({"argv": [">", sink.vpath], "exit": 0, "changed": True})

    # -- command dispatch ----------------------------------------------------------------------

    def resolve(self, name: str) -> Resolved:
        return resolve(self.host, self.fs, name, cwd=self.cwd, path_var=self.vars.get("PATH"))

    async def run_argv(self, argv: list[str], io: Io, assigns: dict[str, str] | None = None) -> int:
        from .builtins import BUILTINS

        name = argv[0]
        builtin = BUILTINS.get(name)
        if builtin is not None:
            if assigns:
                saved = dict(self.vars), set(self.exported)
                self.vars.update(assigns)
                self.exported |= set(assigns)
                try:
                    return await builtin(self, argv, io)
                finally:
                    self.vars, self.exported = saved
            return await builtin(self, argv, io)
        shim, path, code, error = self.resolve(name)
        if shim is None and code:
            io.err.write((error + "\n").encode())
            self.trace.steps.append({"argv": argv, "exit": code, "changed": False})
            return code
        if shim is None:
            return await BUILTINS["bash"](self, ["bash", path, *argv[1:]], io)
        env = {**self.env(), **(assigns or {})}
        stdin = await read_input(io.stdin) if shim.reads_stdin(argv[1:]) else b""
        ctx = Ctx(
            argv=argv,
            env=env,
            user=self.user,
            cwd=self.cwd,
            stdin=stdin,
            out=io.out,
            err=io.err,
            host=self.host,
            shell=self,
            extra={"path": path},
        )
        delay = self.host.latency.command_delay(argv)
        if delay:
            await asyncio.sleep(delay)  # the latency profile: a real host's wait (network, disk), no CPU here
        try:
            result = shim.fn(ctx)
            # Most shims answer at once with their status; the rest are coroutines.
            status = result if isinstance(result, int) else await result if inspect.isawaitable(result) else result
        except ShimExit as exc:
            if exc.message:
                ctx.error(exc.message)
            status = exc.code
        except FsError as exc:
            ctx.error(f"{ctx.prog}: {exc.vpath}: {exc.strerror}")
            status = 1
        except Exception as exc:  # a shim bug must not take the SSH session down with it
            ctx.error(f"{ctx.prog}: sandbox shim error: {type(exc).__name__}: {exc}")
            status = 70
        self.trace.changed = self.trace.changed or ctx.changed
        self.trace.steps.append({"argv": argv, "user": self.user, "exit": status, "changed": ctx.changed})
        return status


async def _zero(_io: Io) -> int:
    return 0
