"""The simulated systemd manager: unit files, what is loaded, and start/stop of the units' processes."""

from __future__ import annotations

import errno
import shlex
import time

from .state import HostState, ServiceRecord
from .vfs import FsError, HostFs, sha256_bytes

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
#: Units every host has, loaded and running from boot.
BASE_UNITS = {
    "ssh": "OpenBSD Secure Shell server",
    "systemd-journald": "Journal Service",
    "systemd-modules-load": "Load Kernel Modules",
    "systemd-sysctl": "Apply Kernel Variables",
    "cron": "Regular background program processing daemon",
}


def unit_key(arg: str) -> str:
    """``containerd.service`` and ``containerd`` name the same unit; state keys carry no suffix."""
    return arg.removesuffix(".service")


#: Each unit directory's entries (None when unknown: a directory the user may not list).
Listings = dict[str, frozenset[str] | None]


def listings(fs: HostFs) -> Listings:
    """The entries of every unit directory, once: a name missing there is no file, and needs no ``stat``."""
    found: Listings = {}
    for directory in UNIT_DIRS:
        try:
            found[directory] = frozenset(fs.listdir(directory))
        except FsError as exc:
            found[directory] = frozenset() if exc.errno in (errno.ENOENT, errno.ENOTDIR) else None
    return found


def _may_hold(seen: Listings | None, directory: str, entry: str) -> bool:
    names = seen.get(directory) if seen is not None else None
    return names is None or entry in names


def unit_file(fs: HostFs, name: str, seen: Listings | None = None) -> str | None:
    for directory in UNIT_DIRS:
        path = f"{directory}/{name}.service"
        if _may_hold(seen, directory, f"{name}.service") and fs.is_file(path):
            return path
    return None


def definition(fs: HostFs, name: str, seen: Listings | None = None) -> tuple[str, str] | None:
    """(unit text including drop-ins, its sha256) or None when no unit file exists.

    ``seen`` (from ``listings()``, taken since the last change of the unit directories) spares the
    ``stat`` of names that are not there.
    """
    path = unit_file(fs, name, seen)
    if path is None:
        return None
    texts = [fs.read(path).decode("utf-8", "replace")]
    for directory in UNIT_DIRS:
        dropins = f"{directory}/{name}.service.d"
        if _may_hold(seen, directory, f"{name}.service.d") and fs.is_dir(dropins):
            for entry in fs.listdir(dropins):
                if entry.endswith(".conf"):
                    texts.append(fs.read(f"{dropins}/{entry}").decode("utf-8", "replace"))
    text = "\n".join(texts)
    return text, sha256_bytes(text.encode())


def directive(text: str, key: str) -> str | None:
    """The effective value of ``Key=`` (the last non-empty assignment wins, an empty one resets)."""
    value: str | None = None
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if line.startswith(f"{key}="):
            value = line[len(key) + 1 :].strip() or None
    return value


def exec_argv(exec_start: str | None) -> list[str]:
    if not exec_start:
        return []
    try:
        argv = shlex.split(exec_start)
    except ValueError:
        return [exec_start]
    if argv:
        argv[0] = argv[0].lstrip("-@+!:")
    return argv


def known_units(state: HostState, fs: HostFs, seen: Listings | None = None) -> set[str]:
    names = set(state.services)
    for entries in (seen if seen is not None else listings(fs)).values():
        names |= {unit_key(n) for n in entries or () if n.endswith(".service")}
    return names


def load(state: HostState, fs: HostFs, name: str) -> ServiceRecord | None:
    """Look a unit up the way systemctl does; loads it on first use, flags a stale definition."""
    found = definition(fs, name)
    rec = state.services.get(name)
    if found is None:
        if rec is not None and rec.source == "base":
            return rec
        return None
    text, sha = found
    if rec is None:
        rec = state.services[name] = ServiceRecord(source="unit-file")
    if rec.loaded_sha256 is None:
        rec.loaded_sha256 = sha
        rec.exec_start = directive(text, "ExecStart")
    elif rec.loaded_sha256 != sha and not rec.needs_daemon_reload:
        rec.needs_daemon_reload = True
        state.warnings.append(f"{name}.service changed on disk without systemctl daemon-reload")
    return rec


def daemon_reload(state: HostState, fs: HostFs) -> bool:
    changed = False
    seen = listings(fs)  # nothing below writes a file
    for name in sorted(known_units(state, fs, seen)):
        found = definition(fs, name, seen)
        rec = state.services.get(name)
        if found is None:
            if rec is not None and rec.source == "unit-file" and rec.loaded_sha256 is not None:
                rec.loaded_sha256 = None
                changed = True
            continue
        text, sha = found
        if rec is None:
            rec = state.services[name] = ServiceRecord(source="unit-file")
        if rec.loaded_sha256 != sha:
            rec.loaded_sha256 = sha
            rec.exec_start = directive(text, "ExecStart")
            changed = True
        rec.needs_daemon_reload = False
    return changed


def description(fs: HostFs, name: str) -> str:
    found = definition(fs, name)
    return (directive(found[0], "Description") if found else None) or BASE_UNITS.get(name, f"{name}.service")


def journal_line(state: HostState, unit: str, message: str, *, process: str = "systemd[1]") -> None:
    stamp = time.strftime("%b %d %H:%M:%S")
    state.journal_add(unit, f"{stamp} {state.hostname} {process}: {message}")
