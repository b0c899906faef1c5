"""The byoh-hostagent binary (a fake file the client uploads) and what starting a unit's ExecStart does."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import units
from ..state import ServiceRecord
from . import Ctx, Shim, ShimExit

AGENT_MAGIC = b"#!sandbox-byoh-hostagent"
SUPPORTED_INSTALLER_OS = ("ubuntu", "20.04", "x86_64")
_VALUE_FLAGS = {
    "bootstrap-kubeconfig",
    "namespace",
    "label",
    "downloadpath",
    "metricsbindaddress",
    "certExpiryDuration",
    "v",
    "kubeconfig",
}
_BOOL_FLAGS = {"skip-installation", "version", "help"}


class AgentStartError(Exception):
    """The agent could not be created; ``str()`` is the journal text."""


@dataclass
class AgentSpec:
    bootstrap_kubeconfig: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    skip_installation: bool = False


def parse_agent_args(args: list[str]) -> AgentSpec:
    """Go-style flags (``-flag v``, ``--flag=v``); ``--label`` repeats or takes ``k1=v1,k2=v2``."""
    spec = AgentSpec(bootstrap_kubeconfig="")
    it = iter(args)
    for arg in it:
        if not arg.startswith("-"):
            raise AgentStartError(f"unexpected argument {arg!r}")
        name, eq, value = arg.lstrip("-").partition("=")
        if name in _BOOL_FLAGS:
            if name == "skip-installation":
                spec.skip_installation = value.lower() not in ("false", "0") if eq else True
            continue
        if name not in _VALUE_FLAGS:
            raise AgentStartError(f"flag provided but not defined: -{name}")
        if not eq:
            value = next(it, "")
        if name == "bootstrap-kubeconfig":
            spec.bootstrap_kubeconfig = value
        elif name == "namespace":
            spec.namespace = value
        elif name == "label":
            for pair in value.split(","):
                key, _, val = pair.partition("=")
                if key:
                    spec.labels[key.strip()] = val.strip()
    return spec


def agent_version(data: bytes) -> str:
    first = data.split(b"\n", 1)[0]
    return first[len(AGENT_MAGIC) :].decode().strip() or "v0.5.0"


def byoh_hostagent(ctx: Ctx) -> int:
    path = ctx.extra.get("path", ctx.argv[0])
    version = agent_version(ctx.fs.read(path)) if ctx.fs.is_file(path) else "v0.5.0"
    if "--version" in ctx.args or "-version" in ctx.args:
        ctx.print(f"byoh-hostagent version: {version}")
        return 0
    if "--help" in ctx.args or "-h" in ctx.args:
        ctx.print(
            "Usage of byoh-hostagent:\n  -bootstrap-kubeconfig string\n  -label value\n  -namespace string "
            '(default "default")\n  -skip-installation\n  -version'
        )
        return 0
    raise ShimExit(1, "byoh-hostagent: run the agent through a systemd unit in the sandbox (it would block here)")


def _exec_problem(ctx: Ctx, argv: list[str]) -> str | None:
    if not argv:
        return "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."
    path = argv[0]
    if not path.startswith("/"):
        return f"Neither a valid executable name nor an absolute path: {path}"
    if not ctx.fs.is_file(path):
        return f"Failed to locate executable {path}: No such file or directory"
    if not ctx.fs.mode_of(path) & 0o111:
        return f"Failed to execute {path}: Permission denied"
    return None


def is_agent_binary(ctx: Ctx, path: str) -> bool:
    return ctx.fs.is_file(path) and ctx.fs.read(path).startswith(AGENT_MAGIC)


def fail_unit(ctx: Ctx, name: str, rec: ServiceRecord, reason: str, status: str = "1/FAILURE") -> None:
    rec.active = "failed"
    rec.failure = reason
    units.journal_line(
        ctx.state, name, reason, process="systemd[1]" if status.startswith("203") else "byoh-hostagent[4242]"
    )
    units.journal_line(ctx.state, name, f"{name}.service: Main process exited, code=exited, status={status}")
    units.journal_line(ctx.state, name, f"{name}.service: Failed with result 'exit-code'.")


async def launch(ctx: Ctx, name: str, rec: ServiceRecord) -> None:
    """Start what the unit's ExecStart names; only the BYOH agent actually runs something."""
    argv = units.exec_argv(rec.exec_start)
    problem = _exec_problem(ctx, argv)
    if problem is not None:
        fail_unit(ctx, name, rec, problem, status="203/EXEC")
        return
    if not is_agent_binary(ctx, argv[0]):
        return
    try:
        spec = parse_agent_args(argv[1:])
        if not spec.skip_installation:
            facts = ctx.facts
            if (facts.os_id, facts.os_version_id, facts.arch) != SUPPORTED_INSTALLER_OS:
                raise AgentStartError("No k8s support for OS")
        if not ctx.fs.is_file("/root/.byoh/config"):
            if not spec.bootstrap_kubeconfig:
                raise AgentStartError("bootstrap kubeconfig is required: --bootstrap-kubeconfig not set")
            if not ctx.fs.is_file(spec.bootstrap_kubeconfig):
                raise AgentStartError(f"open {spec.bootstrap_kubeconfig}: no such file or directory")
        if ctx.host.agents is None:
            raise AgentStartError(
                "the BYOH agent simulator runs only inside the sandbox host pool (not behind a real sshd)"
            )
        await ctx.host.agents.start(name, spec)
    except AgentStartError as exc:
        fail_unit(ctx, name, rec, str(exc))


async def halt(ctx: Ctx, name: str) -> None:
    if ctx.host.agents is not None:
        await ctx.host.agents.stop(name)


SHIMS: dict[str, Shim] = {"byoh-hostagent": Shim(byoh_hostagent, "/usr/local/bin/byoh-hostagent", package="file")}
