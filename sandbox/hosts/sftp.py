"""The SFTP subsystem of a sandbox host: asyncssh's SFTPServer confined to the host's vfs.

Every path goes through ``Vfs.real()`` (virtual symlinks, no escape); writes obey the login user's
permissions; uploads, chmods, renames and removals are recorded in the host state like commands.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

import asyncssh

from .vfs import FsError, HostFs, normalize

if TYPE_CHECKING:
    from .host import SandboxHost

_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC


class HostSFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan: Any, host: SandboxHost) -> None:
        super().__init__(chan, chroot=bytes(host.vfs.root))
        self._host = host
        self._fs = HostFs(host.vfs, host.state, host.facts, host.user)
        #: Open upload handles: id(file) -> [vpath, sha before, mode asked for].
        self._writes: dict[int, list[Any]] = {}

    # -- mapping ---------------------------------------------------------------------------------

    def _vpath(self, path: bytes) -> str:
        return normalize(path.decode("utf-8", "surrogateescape"), self._fs.home())

    def map_path(self, path: bytes) -> bytes:
        return bytes(self._host.vfs.real(self._vpath(path)))

    def _record(self, what: str, changed: bool) -> None:
        self._host.state.record(f"sftp {what}", user=self._host.user, exit_code=0, changed=changed, source="sftp")
        self._host.notify_changed()

    def _attrs(self, vpath: str, follow: bool) -> asyncssh.SFTPAttrs:
        real = self._host.vfs.real(vpath, follow=follow)
        attrs = asyncssh.SFTPAttrs.from_local(os.stat(real) if follow else os.lstat(real))
        info = self._fs.stat(vpath, follow=follow)
        attrs.permissions = (attrs.permissions or 0) & ~0o7777 | info.mode
        user, group = info.owner.split(":")
        attrs.uid, attrs.gid = (0 if user == "root" else 1000), (0 if group == "root" else 1000)
        attrs.owner, attrs.group = user, group
        return attrs

    # -- files -----------------------------------------------------------------------------------

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        vpath = self._vpath(path)
        writing = bool(pflags & _WRITE_FLAGS)
        if writing and not self._fs.can_write(vpath):
            raise FsError(errno.EACCES, vpath)
        if not writing and not self._fs.can_read(vpath):
            raise FsError(errno.EACCES, vpath)
        old_sha = self._fs.sha256_of(vpath) if writing else None
        file_obj = super().open(path, pflags, attrs)
        if writing:
            mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
            self._writes[id(file_obj)] = [vpath, old_sha, mode]
        return file_obj

    def close(self, file_obj: object) -> None:
        super().close(file_obj)
        entry = self._writes.pop(id(file_obj), None)
        if entry is not None:
            vpath, old_sha, mode = entry
            self._record(f"put {vpath}", self._fs.adopt(vpath, old_sha, mode=mode))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(self._vpath(path), follow=False)

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(self._vpath(path), follow=True)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        vpath = self._vpath(path)
        if attrs.permissions is not None:
            mode = attrs.permissions & 0o7777
            self._record(f"chmod {mode:o} {vpath}", self._fs.chmod(vpath, mode))
        if (attrs.uid is not None or attrs.gid is not None) and not self._fs.is_root:
            raise FsError(errno.EPERM, vpath)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        entry = self._writes.get(id(file_obj))
        if entry is not None and attrs.permissions is not None:
            entry[2] = attrs.permissions & 0o7777
            return
        super().fsetstat(file_obj, attrs)

    # -- directories and names -------------------------------------------------------------------

    def remove(self, path: bytes) -> None:
        vpath = self._vpath(path)
        if self._fs.is_dir(vpath) and not self._fs.is_symlink(vpath):
            raise FsError(errno.EISDIR, vpath)
        self._record(f"remove {vpath}", self._fs.remove(vpath))

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        vpath = self._vpath(path)
        mode = attrs.permissions & 0o7777 if attrs.permissions is not None else 0o755
        self._record(f"mkdir {vpath}", self._fs.mkdir(vpath, mode=mode))

    def rmdir(self, path: bytes) -> None:
        vpath = self._vpath(path)
        if not self._fs.is_dir(vpath):
            raise FsError(errno.ENOTDIR, vpath)
        if self._fs.listdir(vpath):
            raise FsError(errno.ENOTEMPTY, vpath)
        self._record(f"rmdir {vpath}", self._fs.remove(vpath, recursive=True))

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        old, new = self._vpath(oldpath), self._vpath(newpath)
        if self._fs.lexists(new):
            raise FsError(errno.EEXIST, new)
        self._record(f"rename {old} {new}", self._fs.rename(old, new))

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        old, new = self._vpath(oldpath), self._vpath(newpath)
        self._record(f"rename {old} {new}", self._fs.rename(old, new))

    def realpath(self, path: bytes) -> bytes:
        vpath = self._vpath(path)
        return self._host.vfs.virtual(self._host.vfs.real(vpath)).encode()

    def readlink(self, path: bytes) -> bytes:
        return self._fs.readlink(self._vpath(path)).encode()

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        target = oldpath.decode("utf-8", "surrogateescape")
        link = self._vpath(newpath)
        self._record(f"symlink {target} {link}", self._fs.symlink(target, link))

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("hard links are not supported by the sandbox host")
