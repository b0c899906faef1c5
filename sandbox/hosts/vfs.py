"""The file API of a sandbox host: permissions, special files and change recording over its fs root.

Every absolute path a client names is resolved inside ``<state>/root`` by ``vpath.Vfs`` (virtual
symlinks, no escape); the names of that module are re-exported here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import shutil
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path

from . import procfs
from .facts import HostFacts
from .state import FileRecord, HostState
from .vpath import FsError, Vfs, normalize

__all__ = ["FsError", "HostFs", "StatInfo", "Vfs", "normalize", "sha256_bytes"]


def _read_bytes(real: str) -> bytes:
    # Unbuffered: a whole-file read needs no buffer, nor the isatty and lseek calls that set one up.
    with open(real, "rb", buffering=0) as fh:
        return fh.readall()


def _is_plain_file(real: str | Path) -> bool:
    """A regular file, not a symlink nor a directory (which may hold symlinks)."""
    try:
        return stat_mod.S_ISREG(os.lstat(real).st_mode)
    except OSError:
        return False


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class StatInfo:
    kind: str  # "file", "dir", "symlink", "special"
    size: int
    mode: int
    owner: str
    mtime: float


class HostFs:
    """The file API shims use: permissions for the acting user, special files, change recording."""

    def __init__(self, vfs: Vfs, state: HostState, facts: HostFacts, user: str) -> None:
        self.vfs = vfs
        self.state = state
        self.facts = facts
        self.user = user

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    def home(self) -> str:
        return "/root" if self.is_root else f"/home/{self.user}"

    # -- permissions -----------------------------------------------------------------------

    def _user_area(self, vpath: str) -> bool:
        # Virtual paths inside the host's fs root, not the real /tmp.
        areas = ("/tmp", "/var/tmp", f"/home/{self.user}")  # noqa: S108
        return any(vpath == area or vpath.startswith(area + "/") for area in areas)

    def _owned(self, vpath: str) -> bool:
        rec = self.state.files.get(vpath)
        return rec is not None and rec.owner.split(":")[0] == self.user

    def can_write(self, vpath: str) -> bool:
        if self.is_root or self._user_area(vpath) or self._owned(vpath):
            return True
        return not self.lexists(vpath) and self._owned(posixpath.dirname(vpath))

    def can_read(self, vpath: str) -> bool:
        if self.is_root or self._user_area(vpath) or self._owned(vpath):
            return True
        if vpath == "/root" or vpath.startswith("/root/") or vpath in {"/etc/shadow", "/etc/sudoers"}:
            return False
        rec = self.state.files.get(vpath)
        return rec is None or bool(rec.mode & 0o004)

    def _check_write(self, vpath: str) -> None:
        if not self.can_write(vpath):
            raise FsError(errno.EACCES, vpath)

    # -- queries ---------------------------------------------------------------------------

    def lexists(self, vpath: str) -> bool:
        if procfs.is_special(vpath):
            return procfs.exists(self.state, self.facts, vpath)
        try:
            return os.path.lexists(self.vfs.real_str(vpath, follow=False))
        except FsError:
            return False

    def exists(self, vpath: str) -> bool:
        if procfs.is_special(vpath):
            return procfs.exists(self.state, self.facts, vpath)
        try:
            return os.path.exists(self.vfs.real_str(vpath))
        except FsError:
            return False

    def is_dir(self, vpath: str) -> bool:
        if procfs.is_special(vpath):
            return procfs.is_dir(self.state, vpath)
        try:
            return os.path.isdir(self.vfs.real_str(vpath))
        except FsError:
            return False

    def is_file(self, vpath: str) -> bool:
        if procfs.is_special(vpath):
            return procfs.exists(self.state, self.facts, vpath) and not procfs.is_dir(self.state, vpath)
        try:
            return os.path.isfile(self.vfs.real_str(vpath))
        except FsError:
            return False

    def is_symlink(self, vpath: str) -> bool:
        return not procfs.is_special(vpath) and self.vfs.real(vpath, follow=False).is_symlink()

    def stat(self, vpath: str, *, follow: bool = True) -> StatInfo:
        if procfs.is_special(vpath):
            if not procfs.exists(self.state, self.facts, vpath):
                raise FsError(errno.ENOENT, vpath)
            kind = "dir" if procfs.is_dir(self.state, vpath) else "special"
            return StatInfo(kind, 0, 0o555 if kind == "dir" else 0o644, "root:root", 0.0)
        real = self.vfs.real(vpath, follow=follow)
        try:
            st = real.lstat()
        except FileNotFoundError:
            raise FsError(errno.ENOENT, vpath) from None
        except NotADirectoryError:
            raise FsError(errno.ENOTDIR, vpath) from None
        kind = "symlink" if stat_mod.S_ISLNK(st.st_mode) else "dir" if stat_mod.S_ISDIR(st.st_mode) else "file"
        rec = self.state.files.get(normalize(vpath))
        mode = rec.mode if rec else stat_mod.S_IMODE(st.st_mode)
        owner = rec.owner if rec else self._default_owner(vpath)
        return StatInfo(kind, st.st_size, mode, owner, st.st_mtime)

    def _default_owner(self, vpath: str) -> str:
        parts = vpath.split("/")
        if len(parts) > 2 and parts[1] == "home":
            return f"{parts[2]}:{parts[2]}"
        return "root:root"

    def mode_of(self, vpath: str) -> int:
        return self.stat(vpath).mode

    def listdir(self, vpath: str) -> list[str]:
        if procfs.is_special(vpath):
            if not procfs.is_dir(self.state, vpath):
                raise FsError(errno.ENOTDIR if procfs.exists(self.state, self.facts, vpath) else errno.ENOENT, vpath)
            return procfs.listdir(self.state, self.facts, vpath)
        real = self.vfs.real_str(vpath)
        try:
            st = os.stat(real)  # one stat answers both "does it exist" and "is it a directory"
        except (OSError, ValueError):
            raise FsError(errno.ENOENT, vpath) from None
        if not stat_mod.S_ISDIR(st.st_mode):
            raise FsError(errno.ENOTDIR, vpath)
        if not self.can_read(vpath):
            raise FsError(errno.EACCES, vpath)
        return sorted(os.listdir(real))

    def read(self, vpath: str) -> bytes:
        if procfs.is_special(vpath):
            try:
                return procfs.read(self.state, self.facts, vpath)
            except procfs.SpecialError as exc:
                raise FsError(exc.errno or errno.EIO, vpath) from None
        real = self.vfs.real_str(vpath)
        try:
            st = os.stat(real)  # one stat answers both "is it a directory" and "does it exist"
        except (OSError, ValueError):
            raise FsError(errno.ENOTDIR if self._parent_not_dir(vpath) else errno.ENOENT, vpath) from None
        if stat_mod.S_ISDIR(st.st_mode):
            raise FsError(errno.EISDIR, vpath)
        if not self.can_read(vpath):
            raise FsError(errno.EACCES, vpath)
        return _read_bytes(real)

    def _parent_not_dir(self, vpath: str) -> bool:
        parent = self.vfs.real(posixpath.dirname(vpath))
        return parent.exists() and not parent.is_dir()

    # -- mutations (each returns whether it changed anything) --------------------------------

    def write(self, vpath: str, data: bytes, *, append: bool = False, mode: int | None = None) -> bool:
        vpath = normalize(vpath)
        if procfs.is_special(vpath):
            try:
                return procfs.write(self.state, self.facts, vpath, data, is_root=self.is_root)
            except procfs.SpecialError as exc:
                raise FsError(exc.errno or errno.EIO, vpath) from None
        real = self.vfs.real_str(vpath)
        parent = os.path.dirname(real)
        if not os.path.exists(parent):
            raise FsError(errno.ENOENT, vpath)
        if not os.path.isdir(parent):
            raise FsError(errno.ENOTDIR, vpath)
        if os.path.isdir(real):
            raise FsError(errno.EISDIR, vpath)
        self._check_write(vpath)
        old = _read_bytes(real) if os.path.exists(real) else None
        new = (old or b"") + data if append else data
        rec = self.state.files.get(vpath)
        old_mode = rec.mode if rec else (self._existing_mode(real, 0o644) if old is not None else None)
        new_mode = mode if mode is not None else (old_mode if old_mode is not None else 0o644)
        owner = rec.owner if rec else (self._default_owner(vpath) if old is not None else f"{self.user}:{self.user}")
        if old != new:
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(new)
        self._apply_mode(real, new_mode)
        changed = old != new or old_mode != new_mode
        self.state.files[vpath] = FileRecord(sha256_bytes(new), new_mode, owner)
        return changed

    @staticmethod
    def _existing_mode(real: str | Path, default: int) -> int:
        try:
            return stat_mod.S_IMODE(os.lstat(real).st_mode)
        except OSError:
            return default

    @staticmethod
    def _apply_mode(real: str | Path, mode: int) -> None:
        # The real file always stays readable/writable by the sandbox process itself.
        extra = 0o700 if os.path.isdir(real) else 0o600
        os.chmod(real, (mode | extra) & 0o7777, follow_symlinks=False)

    def adopt(self, vpath: str, old_sha: str | None, *, mode: int | None = None) -> bool:
        """Record content written behind our back (an SFTP upload); returns whether it changed."""
        vpath = normalize(vpath)
        real = self.vfs.real(vpath)
        sha = sha256_bytes(real.read_bytes())
        rec = self.state.files.get(vpath)
        new_mode = mode if mode is not None else (rec.mode if rec else self._existing_mode(real, 0o644))
        if rec is not None:
            owner = rec.owner
        else:
            owner = f"{self.user}:{self.user}" if old_sha is None else self._default_owner(vpath)
        self._apply_mode(real, new_mode)
        self.state.files[vpath] = FileRecord(sha, new_mode, owner)
        return sha != old_sha or (rec is not None and rec.mode != new_mode)

    def sha256_of(self, vpath: str) -> str | None:
        real = self.vfs.real(vpath)
        return sha256_bytes(real.read_bytes()) if real.is_file() else None

    def mkdir(self, vpath: str, *, parents: bool = False, mode: int = 0o755) -> bool:
        vpath = normalize(vpath)
        if self.is_dir(vpath):
            if parents:
                return False
            raise FsError(errno.EEXIST, vpath)
        if self.lexists(vpath):
            raise FsError(errno.EEXIST, vpath)
        parent = posixpath.dirname(vpath)
        if not self.is_dir(parent):
            if not parents or self.lexists(parent):
                raise FsError(errno.ENOENT if not self.lexists(parent) else errno.ENOTDIR, vpath)
            self.mkdir(parent, parents=True)
        if procfs.is_special(vpath) or not self.can_write(vpath):
            raise FsError(errno.EACCES, vpath)
        real = self.vfs.real_str(vpath)
        os.mkdir(real, 0o755)
        self._apply_mode(real, mode)
        if mode != 0o755 or not self.is_root:
            self.state.files[vpath] = FileRecord(None, mode, f"{self.user}:{self.user}")
        return True

    def remove(self, vpath: str, *, recursive: bool = False) -> bool:
        vpath = normalize(vpath)
        if procfs.is_special(vpath):
            raise FsError(errno.EACCES if self.lexists(vpath) else errno.ENOENT, vpath)
        real = self.vfs.real(vpath, follow=False)
        if not os.path.lexists(real):
            raise FsError(errno.ENOENT, vpath)
        if vpath == "/":
            raise FsError(errno.EBUSY, vpath)
        self._check_write(vpath)
        if real.is_dir() and not real.is_symlink() and not recursive:
            raise FsError(errno.EISDIR, vpath)
        plain = _is_plain_file(real)
        try:
            if real.is_dir() and not real.is_symlink():
                shutil.rmtree(real)
            else:
                real.unlink()
        finally:
            if not plain:  # a symlink, or a tree that may hold some
                self.vfs.forget()
        for key in [k for k in self.state.files if k == vpath or k.startswith(vpath + "/")]:
            del self.state.files[key]
        return True

    def chmod(self, vpath: str, mode: int) -> bool:
        vpath = normalize(vpath)
        info = self.stat(vpath)
        if not self.is_root and info.owner.split(":")[0] != self.user:
            raise FsError(errno.EPERM, vpath)
        real = self.vfs.real(vpath)
        self._apply_mode(real, mode)
        rec = self.state.files.get(vpath)
        sha = rec.sha256 if rec else (sha256_bytes(real.read_bytes()) if real.is_file() else None)
        self.state.files[vpath] = FileRecord(sha, mode, info.owner)
        return info.mode != mode

    def chown(self, vpath: str, owner: str) -> bool:
        vpath = normalize(vpath)
        info = self.stat(vpath)
        if not self.is_root:
            raise FsError(errno.EPERM, vpath)
        real = self.vfs.real(vpath)
        rec = self.state.files.get(vpath)
        sha = rec.sha256 if rec else (sha256_bytes(real.read_bytes()) if real.is_file() else None)
        self.state.files[vpath] = FileRecord(sha, info.mode, owner)
        return info.owner != owner

    def rename(self, src: str, dst: str) -> bool:
        src, dst = normalize(src), normalize(dst)
        if not self.lexists(src):
            raise FsError(errno.ENOENT, src)
        self._check_write(src)
        self._check_write(dst)
        real_src = self.vfs.real(src, follow=False)
        real_dst = self.vfs.real(dst)
        if not real_dst.parent.is_dir():
            raise FsError(errno.ENOENT, dst)
        # Only a file over a file (or over nothing) leaves every symlink where it was.
        plain = _is_plain_file(real_src) and (_is_plain_file(real_dst) or not os.path.lexists(real_dst))
        try:
            os.replace(real_src, real_dst)
        finally:
            if not plain:
                self.vfs.forget()
        for key in [k for k in self.state.files if k == src or k.startswith(src + "/")]:
            self.state.files[dst + key[len(src) :]] = self.state.files.pop(key)
        return True

    def symlink(self, target: str, linkpath: str) -> bool:
        linkpath = normalize(linkpath)
        real = self.vfs.real(linkpath, follow=False)
        if os.path.lexists(real):
            raise FsError(errno.EEXIST, linkpath)
        if not real.parent.is_dir():
            raise FsError(errno.ENOENT, linkpath)
        self._check_write(linkpath)
        # The target text is stored verbatim; Vfs.real() re-reads it inside the root.
        try:
            os.symlink(target, real)
        finally:
            self.vfs.forget()
        return True

    def readlink(self, vpath: str) -> str:
        real = self.vfs.real(vpath, follow=False)
        if not real.is_symlink():
            raise FsError(errno.EINVAL, vpath)
        return os.readlink(real)
