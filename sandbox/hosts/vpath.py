"""Virtual paths of a sandbox host: normalizing them, and resolving them to real paths inside its fs root.

Symlinks are followed *virtually* (their targets are re-read as paths inside the root), so no path can
escape to the real machine, whatever the client writes. Nothing here ever opens a path outside the root.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
from pathlib import Path

_MAX_SYMLINK_HOPS = 40
#: Resolved paths one host remembers; past this the memo starts afresh (a host names a few hundred paths).
_RESOLVED_MAX = 4096


class FsError(OSError):
    """A failed file operation; ``vpath`` is the path as the client named it."""

    def __init__(self, code: int, vpath: str) -> None:
        super().__init__(code, os.strerror(code))
        self.vpath = vpath


@functools.lru_cache(maxsize=8192)
def normalize(vpath: str, cwd: str = "/") -> str:
    """An absolute, lexically normalized virtual path (``..`` never climbs above ``/``).

    Pure and called for every path a command names, so recent answers are remembered.
    """
    norm = posixpath.normpath(posixpath.join(cwd, vpath))
    return "/" + norm.lstrip("/")


class Vfs:
    """Maps virtual paths to real paths under ``root``; never returns a path outside it.

    Resolution depends on nothing but the symlinks under the root, so its answers are remembered until
    something that can add, remove or move a symlink happens (``forget()``: ``HostFs`` calls it for every
    symlink, for every removal or rename of a symlink or a directory). Regular files and directories
    created or rewritten, by ``HostFs`` or behind its back (SFTP uploads, the agent's config), change no
    answer: a path that does not exist resolves lexically, exactly as it will once it does.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)
        self._resolved: dict[tuple[str, bool], str] = {}

    def forget(self) -> None:
        """Drop every remembered resolution (a symlink may have appeared, gone or moved)."""
        self._resolved.clear()

    def real(self, vpath: str, *, follow: bool = True) -> Path:
        return Path(self.real_str(vpath, follow=follow))

    def real_str(self, vpath: str, *, follow: bool = True) -> str:
        """``real()`` as a string: the hot path of every file query, so strings and ``os.path`` rather than
        ``pathlib``, and remembered (see the class)."""
        key = (vpath, follow)
        real = self._resolved.get(key)
        if real is None:
            real = self._resolve(vpath, follow)
            if len(self._resolved) >= _RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[key] = real
        return real

    def _resolve(self, vpath: str, follow: bool) -> str:
        """One ``lstat`` per component; symlink targets are re-read as paths inside the root."""
        parts = [p for p in normalize(vpath).split("/") if p]
        resolved: list[str] = []
        base = self._root  # the real path of ``resolved``
        hops = 0
        i = 0
        while i < len(parts):
            name = parts[i]
            if name == "..":
                if resolved:
                    resolved.pop()
                    base = base.rsplit("/", 1)[0]
                i += 1
                continue
            if name == ".":
                i += 1
                continue
            candidate = f"{base}/{name}"
            last = i == len(parts) - 1
            if (follow or not last) and os.path.islink(candidate):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise FsError(errno.ELOOP, vpath)
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved, base = [], self._root
                parts = [p for p in target.split("/") if p] + parts[i + 1 :]
                i = 0
                continue
            resolved.append(name)
            base = candidate
            i += 1
        return base

    def virtual(self, real: Path) -> str:
        """The virtual path of a path that ``real()`` returned."""
        rel = real.relative_to(self.root).as_posix()
        return "/" if rel == "." else "/" + rel
