"""Finding what a command name runs: a builtin shim, a package's binary (if installed), or a file in the vfs."""

from __future__ import annotations

from .shellio import SECURE_PATH
from .shims import HostLike, Shim, registry
from .vfs import HostFs, normalize

SHIM_MAGIC = b"#!sandbox-shim "
AGENT_MAGIC = b"#!sandbox-byoh-hostagent"
_SCRIPT_SHEBANGS = (b"#!/bin/sh", b"#!/bin/bash", b"#!/usr/bin/env bash", b"#!/usr/bin/env sh", b"#!/usr/bin/bash")

#: (shim, path, error exit code, error text); a shim of None with code 0 means "run the file as a script".
Resolved = tuple[Shim | None, str, int, str]


def resolve(host: HostLike, fs: HostFs, name: str, *, cwd: str, path_var: str | None) -> Resolved:
    table = registry()
    if "/" in name:
        return resolve_file(fs, normalize(name, cwd), name)
    shim = table.get(name)
    if shim is not None and shim.package is None:
        return shim, shim.path or name, 0, ""
    if shim is not None and shim.package != "file" and host.state.installed(shim.package or ""):
        return shim, shim.path, 0, ""
    for directory in (path_var or SECURE_PATH).split(":"):
        candidate = normalize(f"{directory}/{name}")
        if directory and fs.is_file(candidate):
            # Like bash, a match found through PATH is reported by its full path.
            return resolve_file(fs, candidate, candidate)
    return None, "", 127, f"bash: {name}: command not found"


def resolve_file(fs: HostFs, vpath: str, shown: str) -> Resolved:
    if not fs.exists(vpath):
        return None, "", 127, f"bash: {shown}: No such file or directory"
    if fs.is_dir(vpath):
        return None, "", 126, f"bash: {shown}: Is a directory"
    if not fs.mode_of(vpath) & 0o111 or not fs.can_read(vpath):
        return None, "", 126, f"bash: {shown}: Permission denied"
    first = fs.read(vpath)[:256].split(b"\n", 1)[0]
    if first.startswith(SHIM_MAGIC):
        target = registry().get(first[len(SHIM_MAGIC) :].decode().strip())
        if target is not None:
            return target, vpath, 0, ""
    if first.startswith(AGENT_MAGIC):
        return registry()["byoh-hostagent"], vpath, 0, ""
    if first.startswith(_SCRIPT_SHEBANGS):
        return None, vpath, 0, ""
    return None, "", 126, f"bash: {shown}: cannot execute binary file: Exec format error"
