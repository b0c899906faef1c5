"""Virtual /proc, /sys and /dev: generated from the host state, never backed by the real machine."""

from __future__ import annotations

import errno

from . import kernel
from .facts import HostFacts
from .state import HostState

SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
_DIRS = {"/proc", "/proc/sys", "/sys", "/sys/fs", "/sys/fs/cgroup", "/sys/module", "/dev"}
_WRITABLE_NULL = {"/dev/null"}


def is_special(vpath: str) -> bool:
    # Asked of every path a command touches: one C-level prefix test settles almost all of them.
    if not vpath.startswith(SPECIAL_ROOTS):
        return False
    return any(vpath == root or vpath.startswith(root + "/") for root in SPECIAL_ROOTS)


class SpecialError(OSError):
    """Raised with an errno; the caller formats it like the tool it emulates."""


def _sysctl_key(vpath: str) -> str:
    return vpath.removeprefix("/proc/sys/").replace("/", ".")


def _sysctl_dirs(state: HostState) -> set[str]:
    dirs: set[str] = set()
    for key in kernel.sysctl_keys(state):
        parts = key.split(".")
        for i in range(1, len(parts)):
            dirs.add("/proc/sys/" + "/".join(parts[:i]))
    return dirs


def is_dir(state: HostState, vpath: str) -> bool:
    if vpath in _DIRS or vpath in _sysctl_dirs(state):
        return True
    if vpath.startswith("/sys/module/"):
        return vpath.removeprefix("/sys/module/") in state.modules_loaded
    return False


def _generated(state: HostState, facts: HostFacts, vpath: str) -> str | None:
    if vpath == "/dev/null":
        return ""
    if vpath == "/proc/swaps":
        return kernel.swaps_text(state, facts)
    if vpath == "/proc/modules":
        return kernel.modules_text(state)
    if vpath == "/proc/meminfo":
        return kernel.meminfo_text(state, facts)
    if vpath == "/proc/version":
        return f"{facts.kernel_name} version {facts.kernel_release} (buildd@lcy02-amd64) #101-Ubuntu SMP\n"
    if vpath == "/proc/cpuinfo":
        return "".join(f"processor\t: {i}\nmodel name\t: Sandbox CPU\n\n" for i in range(facts.cpus))
    if vpath.startswith("/proc/sys/"):
        value = kernel.sysctl_get(state, _sysctl_key(vpath))
        return None if value is None else value + "\n"
    return None


def exists(state: HostState, facts: HostFacts, vpath: str) -> bool:
    return is_dir(state, vpath) or _generated(state, facts, vpath) is not None


def read(state: HostState, facts: HostFacts, vpath: str) -> bytes:
    if is_dir(state, vpath):
        raise SpecialError(errno.EISDIR, "Is a directory")
    text = _generated(state, facts, vpath)
    if text is None:
        raise SpecialError(errno.ENOENT, "No such file or directory")
    return text.encode()


def write(state: HostState, facts: HostFacts, vpath: str, data: bytes, *, is_root: bool) -> bool:
    """Write a special file; returns whether it changed anything (a sysctl value)."""
    if vpath in _WRITABLE_NULL:
        return False
    if vpath.startswith("/proc/sys/"):
        key = _sysctl_key(vpath)
        if kernel.sysctl_get(state, key) is None:
            raise SpecialError(errno.ENOENT, "No such file or directory")
        if not is_root:
            raise SpecialError(errno.EACCES, "Permission denied")
        value = data.decode("utf-8", "replace").strip()
        changed = state.sysctls.get(key) != value
        state.sysctls[key] = value
        return changed
    if exists(state, facts, vpath):
        raise SpecialError(errno.EACCES, "Permission denied")
    raise SpecialError(errno.ENOENT, "No such file or directory")


def listdir(state: HostState, facts: HostFacts, vpath: str) -> list[str]:
    names: set[str] = set()
    if vpath == "/sys/module":
        return sorted(state.modules_loaded)
    candidates = [
        *_DIRS,
        *_sysctl_dirs(state),
        "/dev/null",
        "/proc/swaps",
        "/proc/modules",
        "/proc/meminfo",
        "/proc/version",
        "/proc/cpuinfo",
    ]
    candidates += ["/proc/sys/" + key.replace(".", "/") for key in kernel.sysctl_keys(state)]
    for path in candidates:
        if path.startswith(vpath.rstrip("/") + "/"):
            rest = path[len(vpath.rstrip("/")) + 1 :]
            names.add(rest.split("/")[0])
    return sorted(names)
