"""systemctl and journalctl over the simulated systemd manager (``units.py``)."""

from __future__ import annotations

from .. import units
from ..state import ServiceRecord
from ..vfs import sha256_bytes
from . import Ctx, Shim, ShimExit
from .agent import halt, launch

_MUTATING = {
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload-or-restart",
    "enable",
    "disable",
    "daemon-reload",
    "mask",
    "unmask",
    "reset-failed",
    "kill",
}
_AUTH = "Interactive authentication required."
_VERB_TEXT = {
    "daemon-reload": "reload daemon",
    "enable": "enable unit",
    "disable": "disable unit",
    "mask": "mask unit",
    "unmask": "unmask unit",
}


def _warn_stale(ctx: Ctx, name: str, rec: ServiceRecord) -> None:
    if rec.needs_daemon_reload:
        ctx.error(
            f"Warning: The unit file, source configuration file or drop-ins of {name}.service changed on "
            "disk. Run 'systemctl daemon-reload' to reload units."
        )


def _unit(ctx: Ctx, arg: str) -> tuple[str, ServiceRecord | None]:
    name = units.unit_key(arg)
    return name, units.load(ctx.state, ctx.fs, name)


async def _start(ctx: Ctx, name: str, rec: ServiceRecord, *, restart: bool) -> None:
    if rec.active == "active" and not restart:
        return
    if rec.active == "active":
        await _stop_process(ctx, name, rec)
        rec.restart_count += 1
    else:
        rec.start_count += 1
    rec.active = "active"
    rec.failure = None
    ctx.mark(True)
    units.journal_line(ctx.state, name, f"Started {units.description(ctx.fs, name)}.")
    if name == "containerd" and ctx.fs.is_file("/etc/containerd/config.toml"):
        rec.config_sha256 = sha256_bytes(ctx.fs.read("/etc/containerd/config.toml"))
    await launch(ctx, name, rec)


async def _stop_process(ctx: Ctx, name: str, rec: ServiceRecord) -> None:
    await halt(ctx, name)


async def _stop(ctx: Ctx, name: str, rec: ServiceRecord) -> None:
    if rec.active == "inactive":
        return
    await _stop_process(ctx, name, rec)
    if rec.active == "active":
        rec.stop_count += 1
        units.journal_line(ctx.state, name, f"Stopped {units.description(ctx.fs, name)}.")
    rec.active = "inactive"
    ctx.mark(True)


def _enable(ctx: Ctx, name: str, rec: ServiceRecord, on: bool) -> None:
    if rec.enabled == on:
        return
    rec.enabled = on
    ctx.mark(True)
    link = f"/etc/systemd/system/multi-user.target.wants/{name}.service"
    source = units.unit_file(ctx.fs, name) or f"/lib/systemd/system/{name}.service"
    ctx.error(f"Created symlink {link} → {source}." if on else f"Removed {link}.")


async def _act(ctx: Ctx, verb: str, name: str, rec: ServiceRecord, now: bool) -> None:
    if verb in ("enable", "disable"):
        _enable(ctx, name, rec, verb == "enable")
        if now:
            await (_start(ctx, name, rec, restart=False) if verb == "enable" else _stop(ctx, name, rec))
    elif verb == "start":
        await _start(ctx, name, rec, restart=False)
    elif verb in ("restart", "reload-or-restart"):
        await _start(ctx, name, rec, restart=True)
    elif verb == "try-restart":
        if rec.active == "active":
            await _start(ctx, name, rec, restart=True)
    elif verb == "stop":
        await _stop(ctx, name, rec)
    elif verb == "reset-failed" and rec.active == "failed":
        rec.active = "inactive"
        ctx.mark(True)


def _query(ctx: Ctx, verb: str, names: list[str], quiet: bool) -> int:
    status = 0
    for arg in names:
        name, rec = _unit(ctx, arg)
        if verb == "is-active":
            state = rec.active if rec else "inactive"
            if not quiet:
                ctx.print(state)
            status = status or (0 if state == "active" else 3)
        elif verb == "is-failed":
            failed = rec is not None and rec.active == "failed"
            if not quiet:
                ctx.print(rec.active if rec else "inactive")
            status = status or (0 if failed else 1)
        elif verb == "is-enabled":
            if rec is None:
                ctx.error(f"Failed to get unit file state for {name}.service: No such file or directory")
                status = 1
                continue
            if not quiet:
                ctx.print("enabled" if rec.enabled else "disabled")
            status = status or (0 if rec.enabled else 1)
    return status


def _status(ctx: Ctx, names: list[str]) -> int:
    status = 0
    for arg in names:
        name, rec = _unit(ctx, arg)
        if rec is None:
            ctx.error(f"Unit {name}.service could not be found.")
            status = 4
            continue
        _warn_stale(ctx, name, rec)
        path = units.unit_file(ctx.fs, name) or f"/lib/systemd/system/{name}.service"
        active = {"active": "active (running)", "failed": "failed (Result: exit-code)"}.get(
            rec.active, "inactive (dead)"
        )
        dot = {"active": "\u25cf", "failed": "\u00d7"}.get(rec.active, "\u25cb")
        ctx.print(
            f"{dot} {name}.service - {units.description(ctx.fs, name)}\n"
            f"     Loaded: loaded ({path}; {'enabled' if rec.enabled else 'disabled'}; vendor preset: enabled)\n"
            f"     Active: {active}"
        )
        for line in ctx.state.journal.get(name, [])[-10:]:
            ctx.print(line)
        status = status or (0 if rec.active == "active" else 3)
    return status


async def systemctl(ctx: Ctx) -> int:
    flags = [a for a in ctx.args if a.startswith("-")]
    words = [a for a in ctx.args if not a.startswith("-")]
    if not words:
        ctx.print("UNIT                       LOAD   ACTIVE SUB     DESCRIPTION")
        for name in sorted(ctx.state.services):
            rec = ctx.state.services[name]
            sub = "running" if rec.active == "active" else "dead"
            ctx.print(f"{name + '.service':<26} loaded {rec.active:<6} {sub}")
        return 0
    verb, names = words[0], words[1:]
    quiet = "-q" in flags or "--quiet" in flags
    if verb in ("is-active", "is-enabled", "is-failed"):
        return _query(ctx, verb, names, quiet)
    if verb == "status":
        return _status(ctx, names)
    if verb in ("show", "cat", "list-units", "list-unit-files"):
        return _show(ctx, verb, names)
    if verb not in _MUTATING:
        raise ShimExit(1, f"Unknown command verb {verb}.")
    if not ctx.is_root:
        unit = (names[0] if names[0].endswith(".service") else names[0] + ".service") if names else ""
        if verb in _VERB_TEXT:
            raise ShimExit(1, f"Failed to {_VERB_TEXT[verb]}: {_AUTH}")
        raise ShimExit(
            1, f"Failed to {verb} {unit}: {_AUTH}\nSee system logs and 'systemctl status {unit}' for details."
        )
    if verb == "daemon-reload":
        ctx.mark(units.daemon_reload(ctx.state, ctx.fs))
        return 0
    now = "--now" in flags
    for arg in names:
        name, found = _unit(ctx, arg)
        if found is None:
            if verb in ("enable", "disable"):
                raise ShimExit(1, f"Failed to {verb} unit: Unit file {name}.service does not exist.")
            raise ShimExit(5, f"Failed to {verb} {name}.service: Unit {name}.service not found.")
        _warn_stale(ctx, name, found)
        await _act(ctx, verb, name, found, now)
    return 0


def _show(ctx: Ctx, verb: str, names: list[str]) -> int:
    props = [a.split("=", 1)[1] for a in ctx.args if a.startswith("--property=")]
    props += [ctx.args[i + 1] for i, a in enumerate(ctx.args[:-1]) if a in ("-p", "--property")]
    for arg in names:
        name, rec = _unit(ctx, arg)
        if verb == "cat":
            found = units.definition(ctx.fs, name)
            if found is None:
                raise ShimExit(1, f"No files found for {name}.service.")
            ctx.print(found[0])
            continue
        values = {
            "ActiveState": rec.active if rec else "inactive",
            "UnitFileState": ("enabled" if rec.enabled else "disabled") if rec else "",
            "LoadState": "loaded" if rec else "not-found",
            "NRestarts": str(rec.restart_count if rec else 0),
            "ExecStart": rec.exec_start or "" if rec else "",
            "NeedDaemonReload": "yes" if rec and rec.needs_daemon_reload else "no",
        }
        for key in props or list(values):
            ctx.print(values.get(key, "") if "--value" in ctx.args else f"{key}={values.get(key, '')}")
    return 0


def journalctl(ctx: Ctx) -> int:
    args = ctx.args
    unit = None
    lines = None
    for i, arg in enumerate(args):
        if arg in ("-u", "--unit") and i + 1 < len(args):
            unit = units.unit_key(args[i + 1])
        elif arg.startswith("--unit="):
            unit = units.unit_key(arg.split("=", 1)[1])
        elif arg.startswith("-u") and len(arg) > 2:
            unit = units.unit_key(arg[2:])
        elif arg in ("-n", "--lines") and i + 1 < len(args):
            lines = int(args[i + 1])
    if unit is None:
        entries = [line for name in sorted(ctx.state.journal) for line in ctx.state.journal[name]]
    else:
        entries = list(ctx.state.journal.get(unit, []))
    if lines is not None:
        entries = entries[-lines:] if lines else []
    ctx.print("\n".join(entries) if entries else "-- No entries --")
    return 0


SHIMS: dict[str, Shim] = {
    "systemctl": Shim(systemctl, "/usr/bin/systemctl"),
    "journalctl": Shim(journalctl, "/usr/bin/journalctl"),
}
