"""apt-get / apt / apt-cache / apt-mark over the sandbox package universe (see ``packages.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import packages as pk
from .. import units
from ..state import PackageRecord, ServiceRecord
from . import Ctx, Shim, ShimExit

_LOCK_FRONTEND = (
    "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
    "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?"
)
_LOCK_LISTS = (
    "Reading package lists...\n"
    "E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n"
    "E: Unable to lock directory /var/lib/apt/lists/"
)
_DEBCONF_NO_TTY = (
    "debconf: unable to initialize frontend: Dialog\n"
    "debconf: (TERM is not set, so the dialog frontend is not usable.)\n"
    "debconf: falling back to frontend: Readline\n"
    "debconf: unable to initialize frontend: Readline\n"
    "debconf: (This frontend requires a controlling tty.)\n"
    "debconf: falling back to frontend: Teletype"
)
_READING = "Reading package lists...\nBuilding dependency tree...\nReading state information..."


@dataclass
class _Opts:
    yes: bool = False
    allow_held: bool = False
    allow_downgrades: bool = False
    command: str = ""
    names: list[str] = field(default_factory=list)


def _parse(args: list[str]) -> _Opts:
    opts = _Opts()
    it = iter(args)
    for arg in it:
        if arg in ("-y", "--yes", "--assume-yes") or (arg.startswith("-") and not arg.startswith("--") and "y" in arg):
            opts.yes = True
        elif arg == "--allow-change-held-packages":
            opts.allow_held = True
        elif arg == "--allow-downgrades":
            opts.allow_downgrades = True
        elif arg == "-o":
            next(it, None)
        elif arg.startswith("-"):
            continue
        elif not opts.command:
            opts.command = arg
        else:
            opts.names.append(arg)
    return opts


def update(ctx: Ctx) -> int:
    if not ctx.is_root:
        raise ShimExit(100, _LOCK_LISTS)
    lines = [
        f"Hit:1 {pk.ARCHIVE} {ctx.facts.os_codename} InRelease",
        f"Hit:2 {pk.ARCHIVE} {ctx.facts.os_codename}-updates InRelease",
    ]
    errors: list[str] = []
    indexed: list[str] = []
    for n, repo in enumerate(pk.configured_k8s_repos(ctx.fs), start=3):
        if repo.minor not in pk.K8S_MINORS:
            lines.append(f"Ign:{n} {repo.url}  InRelease")
            errors.append(f"E: The repository '{repo.url}  Release' does not have a Release file.")
            continue
        problem = pk.keyring_problem(ctx.fs, repo)
        lines.append(f"Get:{n} {repo.url}  InRelease [1186 B]")
        if problem is not None:
            kind = "W: GPG error" if problem.startswith("NO_PUBKEY") else "W"
            errors.append(
                f"{kind}: {repo.url}  InRelease: {problem}"
                if kind == "W"
                else f"{kind}: {repo.url}  InRelease: The following signatures couldn't be verified because"
                f" the public key is not available: {problem}"
            )
            errors.append(f"E: The repository '{repo.url}  InRelease' is not signed.")
            continue
        indexed.append(f"k8s:1.{repo.minor}")
    ctx.print("\n".join([*lines, "Reading package lists..."]))
    new_index = sorted(set(indexed))
    ctx.mark(new_index != ctx.state.apt_indexed)
    ctx.state.apt_indexed = new_index
    if errors:
        ctx.error("\n".join(errors))
        return 100
    return 0


def _resolve(ctx: Ctx, names: list[str]) -> list[tuple[str, str]]:
    wanted: list[tuple[str, str]] = []
    for spec in names:
        name, _, version = spec.partition("=")
        available = pk.available_versions(name, ctx.state.apt_indexed)
        if name not in pk.UNIVERSE:
            raise ShimExit(100, f"{_READING}\nE: Unable to locate package {name}")
        if version:
            if version not in available:
                raise ShimExit(100, f"{_READING}\nE: Version '{version}' for '{name}' was not found")
        elif not available:
            raise ShimExit(
                100,
                f"{_READING}\nPackage {name} is not available, but is referred to by another "
                f"package.\nE: Package '{name}' has no installation candidate",
            )
        wanted.append((name, version or max(available, key=pk.version_key)))
    return wanted


def _with_dependencies(ctx: Ctx, wanted: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    plan: dict[str, tuple[str, bool]] = {name: (version, False) for name, version in wanted}
    queue = [name for name, _ in wanted]
    while queue:
        for dep in pk.UNIVERSE[queue.pop(0)].depends:
            if dep in plan or ctx.state.installed(dep):
                continue
            versions = pk.available_versions(dep, ctx.state.apt_indexed)
            if not versions:
                raise ShimExit(
                    100,
                    f"{_READING}\nThe following packages have unmet dependencies:\n"
                    f" E: Unable to correct problems, you have held broken packages.",
                )
            plan[dep] = (max(versions, key=pk.version_key), True)
            queue.append(dep)
    return [(name, version, auto) for name, (version, auto) in plan.items()]


def install_package(ctx: Ctx, name: str, version: str, auto: bool) -> None:
    pkg = pk.UNIVERSE[name]
    prev = ctx.state.packages.get(name)
    ctx.state.packages[name] = PackageRecord(version, "installed", auto if prev is None else prev.auto and auto)
    for path in pkg.binaries:
        shim = pk.BINARY_SHIM.get(path, path.rsplit("/", 1)[-1])
        ctx.fs.mkdir(path.rsplit("/", 1)[0], parents=True)
        ctx.fs.write(path, f"#!sandbox-shim {shim}\n# {name} {version}\n".encode(), mode=0o755)
    if pkg.unit:
        unit_path = f"/lib/systemd/system/{pkg.unit}.service"
        ctx.fs.write(
            unit_path,
            (
                f"[Unit]\nDescription={pkg.description}\nAfter=network-online.target\n\n"
                f"[Service]\nExecStart={pkg.exec_start}\nRestart=always\n\n"
                "[Install]\nWantedBy=multi-user.target\n"
            ).encode(),
        )
        rec = ctx.state.services.get(pkg.unit) or ServiceRecord(source="package")
        ctx.state.services[pkg.unit] = rec
        units.daemon_reload(ctx.state, ctx.fs)
        if prev is None or prev.status != "installed":
            rec.enabled = rec.enabled or pkg.enable_on_install
            if pkg.start_on_install and rec.active != "active":
                rec.active = "active"
                rec.start_count += 1
                units.journal_line(ctx.state, pkg.unit, f"Started {pkg.description}.")
        elif rec.active == "active":
            rec.restart_count += 1  # the postinst of an upgrade restarts the service


def remove_package(ctx: Ctx, name: str, purge: bool) -> None:
    pkg = pk.UNIVERSE[name]
    for path in pkg.binaries:
        if ctx.fs.lexists(path):
            ctx.fs.remove(path)
    if pkg.unit:
        unit_path = f"/lib/systemd/system/{pkg.unit}.service"
        if ctx.fs.lexists(unit_path):
            ctx.fs.remove(unit_path)
        ctx.state.services.pop(pkg.unit, None)
    if purge:
        ctx.state.packages.pop(name, None)
        if pkg.config_file and ctx.fs.lexists(pkg.config_file):
            ctx.fs.remove(pkg.config_file)
    else:
        ctx.state.packages[name].status = "config-files"


def install(ctx: Ctx, opts: _Opts) -> int:
    if not ctx.is_root:
        raise ShimExit(100, _LOCK_FRONTEND)
    plan = _with_dependencies(ctx, _resolve(ctx, opts.names))
    todo = [(n, v, a) for n, v, a in plan if ctx.state.installed(n) != v]
    for name, version, _auto in plan:
        if (name, version, _auto) not in todo and not _auto:
            ctx.print(f"{name} is already the newest version ({version}).")
    held = [n for n, v, _ in todo if ctx.state.held(n) and ctx.state.installed(n)]
    downgrades = [n for n, v, _ in todo if (cur := ctx.state.installed(n)) and pk.version_key(v) < pk.version_key(cur)]
    lines = [_READING]
    extra = [n for n, _, auto in todo if auto]
    if extra:
        lines += ["The following additional packages will be installed:", "  " + " ".join(sorted(extra))]
    new = [n for n, _, _ in todo if not ctx.state.installed(n)]
    changed = [n for n, _, _ in todo if ctx.state.installed(n)]
    if held:
        lines += ["The following held packages will be changed:", "  " + " ".join(sorted(held))]
    if new:
        lines += ["The following NEW packages will be installed:", "  " + " ".join(sorted(new))]
    if changed:
        lines += [
            "The following packages will be upgraded:"
            if not downgrades
            else "The following packages will be DOWNGRADED:",
            "  " + " ".join(sorted(changed)),
        ]
    lines.append(f"{len(changed)} upgraded, {len(new)} newly installed, 0 to remove and 0 not upgraded.")
    ctx.print("\n".join(lines))
    if held and not opts.allow_held:
        raise ShimExit(100, "E: Held packages were changed and -y was used without --allow-change-held-packages.")
    if downgrades and not opts.allow_downgrades:
        raise ShimExit(100, "E: Packages were downgraded and -y was used without --allow-downgrades.")
    if todo and not opts.yes and (extra or changed):
        ctx.print("Do you want to continue? [Y/n] Abort.")
        return 1
    if todo and ctx.env.get("DEBIAN_FRONTEND") != "noninteractive":
        ctx.error(_DEBCONF_NO_TTY)
        ctx.state.warnings.append("apt-get install ran without DEBIAN_FRONTEND=noninteractive")
    for name, version, auto in sorted(todo, key=lambda item: not item[2]):
        ctx.print(f"Setting up {name} ({version}) ...")
        install_package(ctx, name, version, auto)
        ctx.mark(True)
    return 0


def _dependents(name: str, installed: set[str]) -> set[str]:
    out: set[str] = set()
    for other in installed:
        if name in pk.UNIVERSE[other].depends:
            out |= {other} | _dependents(other, installed - {other})
    return out


def remove(ctx: Ctx, opts: _Opts, purge: bool) -> int:
    if not ctx.is_root:
        raise ShimExit(100, _LOCK_FRONTEND)
    installed = {n for n in ctx.state.packages if ctx.state.installed(n)}
    targets: set[str] = set()
    for name in opts.names:
        if name not in pk.UNIVERSE:
            raise ShimExit(100, f"{_READING}\nE: Unable to locate package {name}")
        if name in installed or (purge and name in ctx.state.packages):
            targets |= {name} | _dependents(name, installed - {name})
        else:
            ctx.print(f"Package '{name}' is not installed, so not removed")
    ctx.print(_READING)
    if not targets:
        ctx.print("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.")
        return 0
    ctx.print("The following packages will be REMOVED:\n  " + " ".join(sorted(targets)))
    if any(ctx.state.held(n) for n in targets) and not opts.allow_held:
        raise ShimExit(100, "E: Held packages were changed and -y was used without --allow-change-held-packages.")
    if not opts.yes:
        ctx.print("Do you want to continue? [Y/n] Abort.")
        return 1
    for name in sorted(targets):
        ctx.print(f"{'Purging configuration files for' if purge else 'Removing'} {name} ...")
        remove_package(ctx, name, purge)
    ctx.mark(True)
    return 0


def apt_get(ctx: Ctx) -> int:
    opts = _parse(ctx.args)
    if ctx.prog == "apt":
        ctx.error("\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n")
    if opts.command == "update":
        return update(ctx)
    if opts.command in ("install", "reinstall"):
        return install(ctx, opts)
    if opts.command in ("remove", "purge"):
        return remove(ctx, opts, purge=opts.command == "purge")
    if opts.command in ("autoremove", "clean", "autoclean", "upgrade", "dist-upgrade"):
        if not ctx.is_root:
            raise ShimExit(100, _LOCK_FRONTEND)
        ctx.print(f"{_READING}\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.")
        return 0
    raise ShimExit(100, f"E: Invalid operation {opts.command}" if opts.command else "E: No operation specified")


def apt_mark(ctx: Ctx) -> int:
    args = [a for a in ctx.args if not a.startswith("-")]
    if not args:
        raise ShimExit(100, "E: No command specified")
    command, names = args[0], args[1:]
    if command in ("showhold", "showheld"):
        for name in sorted(ctx.state.holds):
            ctx.print(name)
        return 0
    if command not in ("hold", "unhold", "manual", "auto"):
        raise ShimExit(100, f"E: Invalid operation {command}")
    if not ctx.is_root:
        raise ShimExit(
            100, "E: Could not create temporary file for /var/lib/apt/extended_states - mkstemp (13: Permission denied)"
        )
    for name in names:
        if name not in pk.UNIVERSE:
            raise ShimExit(100, f"E: Unable to locate package {name}")
        if command == "hold":
            if name in ctx.state.holds:
                ctx.print(f"{name} was already set on hold.")
            else:
                ctx.state.holds.add(name)
                ctx.mark(True)
                ctx.print(f"{name} set on hold.")
        elif command == "unhold":
            if name in ctx.state.holds:
                ctx.state.holds.discard(name)
                ctx.mark(True)
                ctx.print(f"Canceled hold on {name}.")
            else:
                ctx.print(f"{name} was already not on hold.")
    return 0


def apt_cache(ctx: Ctx) -> int:
    args = [a for a in ctx.args if not a.startswith("-")]
    command, names = (args[0], args[1:]) if args else ("", [])
    for name in names:
        versions = sorted(pk.available_versions(name, ctx.state.apt_indexed), key=pk.version_key, reverse=True)
        if command == "madison":
            for v in versions:
                ctx.print(f"{name:>10} | {v} | {pk.repo_url_for(name, v)}  Packages")
        elif command == "policy":
            ctx.print(
                f"{name}:\n  Installed: {ctx.state.installed(name) or '(none)'}\n"
                f"  Candidate: {versions[0] if versions else '(none)'}\n  Version table:"
            )
            for v in versions:
                ctx.print(f"     {v} 500\n        500 {pk.repo_url_for(name, v)}  Packages")
        elif command == "show" and not versions:
            raise ShimExit(100, "E: No packages found")
    return 0


SHIMS: dict[str, Shim] = {
    "apt-get": Shim(apt_get, "/usr/bin/apt-get"),
    "apt": Shim(apt_get, "/usr/bin/apt"),
    "apt-mark": Shim(apt_mark, "/usr/bin/apt-mark"),
    "apt-cache": Shim(apt_cache, "/usr/bin/apt-cache"),
}
