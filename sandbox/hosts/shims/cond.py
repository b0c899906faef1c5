"""``test``/``[`` and ``stat``: questions about files, answered from the host's vfs."""

from __future__ import annotations

import stat as stat_mod

from ..vfs import FsError
from . import Ctx, Shim, ShimExit
from .files import split_opts

_UNARY_FILE = set("efdsxrwLhSpbc")
_INT_OPS = {
    "-eq": int.__eq__,
    "-ne": int.__ne__,
    "-lt": int.__lt__,
    "-le": int.__le__,
    "-gt": int.__gt__,
    "-ge": int.__ge__,
}


class _TestError(Exception):
    pass


def _unary(ctx: Ctx, op: str, operand: str) -> bool:
    if op == "-z":
        return operand == ""
    if op == "-n":
        return operand != ""
    if op[1:] not in _UNARY_FILE:
        raise _TestError(f"{op}: unary operator expected")
    fs, vpath = ctx.fs, ctx.path(operand)
    if op in ("-L", "-h"):
        return fs.lexists(vpath) and fs.is_symlink(vpath)
    if not fs.exists(vpath):
        return False
    if op == "-e":
        return True
    if op == "-f":
        return fs.is_file(vpath)
    if op == "-d":
        return fs.is_dir(vpath)
    if op == "-s":
        try:
            return len(fs.read(vpath)) > 0
        except FsError:
            return fs.stat(vpath).size > 0
    if op == "-x":
        return bool(fs.mode_of(vpath) & 0o111) and (ctx.is_root or fs.can_read(vpath))
    if op == "-r":
        return fs.can_read(vpath)
    if op == "-w":
        return fs.can_write(vpath)
    return False


def _binary(ctx: Ctx, left: str, op: str, right: str) -> bool:
    if op in ("=", "=="):
        return left == right
    if op == "!=":
        return left != right
    if op in _INT_OPS:
        try:
            return bool(_INT_OPS[op](int(left), int(right)))
        except ValueError:
            bad = left if not left.lstrip("-").isdigit() else right
            raise _TestError(f"{bad}: integer expression expected") from None
    if op in ("-nt", "-ot"):
        try:
            a, b = ctx.fs.stat(ctx.path(left)).mtime, ctx.fs.stat(ctx.path(right)).mtime
        except FsError:
            return False
        return a > b if op == "-nt" else a < b
    raise _TestError(f"{op}: binary operator expected")


def _expr(ctx: Ctx, args: list[str]) -> bool:
    # -o binds weaker than -a; both bind weaker than !.
    for op in ("-o", "-a"):
        if op in args[1:-1]:
            i = len(args) - 1 - args[::-1].index(op)
            left, right = _expr(ctx, args[:i]), _expr(ctx, args[i + 1 :])
            return left or right if op == "-o" else left and right
    if not args:
        return False
    if args[0] == "!" and len(args) > 1:
        return not _expr(ctx, args[1:])
    if args[0] == "(" and args[-1] == ")":
        return _expr(ctx, args[1:-1])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        return _unary(ctx, args[0], args[1])
    if len(args) == 3:
        return _binary(ctx, args[0], args[1], args[2])
    raise _TestError("too many arguments")


def test(ctx: Ctx) -> int:
    args = list(ctx.args)
    if ctx.prog == "[":
        if not args or args[-1] != "]":
            raise ShimExit(2, "bash: [: missing `]'")
        args = args[:-1]
    try:
        return 0 if _expr(ctx, args) else 1
    except _TestError as exc:
        raise ShimExit(2, f"bash: {ctx.prog}: {exc}") from None


_FILE_TYPES = {"dir": "directory", "symlink": "symbolic link", "file": "regular file", "special": "regular file"}


def _format(ctx: Ctx, fmt: str, name: str, filesystem: bool) -> str:
    vpath = ctx.path(name)
    if filesystem:
        fs_type = ctx.facts.cgroup_fs if vpath.startswith("/sys/fs/cgroup") else "ext2/ext3"
        values = {
            "T": fs_type,
            "n": name,
            "t": "63677270" if fs_type == "cgroup2fs" else "ef53",
            "s": "4096",
            "b": str(ctx.facts.disk_bytes // 4096),
            "a": str(ctx.facts.var_free_bytes // 4096),
        }
    else:
        info = ctx.fs.stat(vpath, follow="L" in ctx.extra.get("flags", set()))
        user, group = info.owner.split(":")
        kind = {"dir": stat_mod.S_IFDIR, "symlink": stat_mod.S_IFLNK}.get(info.kind, stat_mod.S_IFREG)
        values = {
            "a": f"{info.mode:o}",
            "A": stat_mod.filemode(kind | info.mode),
            "U": user,
            "G": group,
            "u": "0" if user == "root" else "1000",
            "g": "0" if group == "root" else "1000",
            "n": name,
            "s": str(info.size),
            "F": _FILE_TYPES[info.kind],
            "Y": str(int(info.mtime)),
            "f": f"{kind | info.mode:x}",
            "h": "1",
            "i": "0",
        }
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            spec = fmt[i + 1]
            out.append("%" if spec == "%" else values.get(spec, "?"))
            i += 2
        elif fmt[i] == "\\" and i + 1 < len(fmt) and fmt[i + 1] == "n":
            out.append("\n")
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def stat(ctx: Ctx) -> int:
    flags, values, paths = split_opts(ctx.args, "c")
    ctx.extra["flags"] = flags
    fmt = values.get("c", values.get("format", values.get("printf")))
    filesystem = "f" in flags or "file-system" in flags
    status = 0
    for name in paths:
        if not ctx.fs.exists(ctx.path(name)) and not ctx.fs.lexists(ctx.path(name)):
            ctx.error(
                f"stat: cannot {'read file system information for' if filesystem else 'statx'} "
                f"'{name}': No such file or directory"
            )
            status = 1
            continue
        if fmt is None:
            fmt = "  File: %n\n  Size: %s\tAccess: (0%a/%A)  Uid: ( %u/ %U)   Gid: ( %g/ %G)"
            if filesystem:
                fmt = '  File: "%n"\n    ID: 0 Namelen: 255     Type: %T\nBlock size: %s'
        text = _format(ctx, fmt, name, filesystem)
        ctx.out.write((text if "printf" in values else text + "\n").encode())
    return status


SHIMS: dict[str, Shim] = {
    "test": Shim(test, "/usr/bin/test"),
    "[": Shim(test, "/usr/bin/["),
    "stat": Shim(stat, "/usr/bin/stat"),
}
