"""File shims: cat, tee, mkdir, rm, chmod, chown, install, cp, mv, ln, touch, ls, basename, dirname, readlink."""

from __future__ import annotations

import posixpath
import stat as stat_mod

from ..vfs import FsError
from . import Ctx, Shim, ShimExit, no_file_args


def split_opts(args: list[str], with_value: str = "") -> tuple[set[str], dict[str, str], list[str]]:
    """Split short options (clustered, ``-m 0644``/``-m0644`` for those in ``with_value``) from operands."""
    flags: set[str] = set()
    values: dict[str, str] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if eq:
                values[name] = value
            else:
                flags.add(name)
            continue
        if arg.startswith("-") and len(arg) > 1:
            for k, flag in enumerate(arg[1:]):
                if flag in with_value:
                    rest = arg[k + 2 :]
                    values[flag] = rest if rest else (args[i] if i < len(args) else "")
                    if not rest:
                        i += 1
                    break
                flags.add(flag)
            continue
        operands.append(arg)
    return flags, values, operands


def _q(path: str) -> str:
    return f"'{path}'"


def cat(ctx: Ctx) -> int:
    _flags, _values, files = split_opts(ctx.args)
    status = 0
    for name in files or ["-"]:
        if name == "-":
            ctx.out.write(ctx.stdin)
            continue
        try:
            ctx.out.write(ctx.fs.read(ctx.path(name)))
        except FsError as exc:
            ctx.error(f"cat: {name}: {exc.strerror}")
            status = 1
    return status


def tee(ctx: Ctx) -> int:
    flags, _values, files = split_opts(ctx.args)
    append = "a" in flags or "append" in flags
    ctx.out.write(ctx.stdin)
    status = 0
    for name in files:
        try:
            ctx.mark(ctx.fs.write(ctx.path(name), ctx.stdin, append=append))
        except FsError as exc:
            ctx.error(f"tee: {name}: {exc.strerror}")
            status = 1
    return status


def parse_mode(spec: str, current: int, is_dir: bool = False) -> int:
    """An octal mode, or symbolic clauses like ``u+x,go-w`` applied to ``current``."""
    if spec and all(c in "01234567" for c in spec):
        return int(spec, 8)
    mode = current
    for clause in spec.split(","):
        who_end = 0
        while who_end < len(clause) and clause[who_end] in "ugoa":
            who_end += 1
        who = clause[:who_end] or "a"
        if who_end >= len(clause) or clause[who_end] not in "+-=":
            raise ValueError(spec)
        op, perms = clause[who_end], clause[who_end + 1 :]
        bits = 0
        for p in perms:
            if p not in "rwxXst":
                raise ValueError(spec)
            for w in "ugo" if "a" in who else who:
                shift = {"u": 6, "g": 3, "o": 0}[w]
                if p == "r":
                    bits |= 4 << shift
                elif p == "w":
                    bits |= 2 << shift
                elif p == "x" or (p == "X" and (is_dir or current & 0o111)):
                    bits |= 1 << shift
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            mask = sum(7 << {"u": 6, "g": 3, "o": 0}[w] for w in ("ugo" if "a" in who else who))
            mode = (mode & ~mask) | bits
    return mode


def mkdir(ctx: Ctx) -> int:
    flags, values, dirs = split_opts(ctx.args, "m")
    if not dirs:
        raise ShimExit(1, "mkdir: missing operand")
    mode = int(values.get("m", values.get("mode", "755")), 8)
    status = 0
    for name in dirs:
        try:
            ctx.mark(ctx.fs.mkdir(ctx.path(name), parents="p" in flags or "parents" in flags, mode=mode))
        except FsError as exc:
            ctx.error(f"mkdir: cannot create directory {_q(name)}: {exc.strerror}")
            status = 1
    return status


def rm(ctx: Ctx) -> int:
    flags, _values, paths = split_opts(ctx.args)
    force = "f" in flags or "force" in flags
    recursive = bool({"r", "R", "recursive"} & flags)
    status = 0
    for name in paths:
        vpath = ctx.path(name)
        if not ctx.fs.lexists(vpath):
            if not force:
                ctx.error(f"rm: cannot remove {_q(name)}: No such file or directory")
                status = 1
            continue
        try:
            ctx.mark(ctx.fs.remove(vpath, recursive=recursive))
        except FsError as exc:
            ctx.error(f"rm: cannot remove {_q(name)}: {exc.strerror}")
            status = 1
    return status


def chmod(ctx: Ctx) -> int:
    _flags, _values, operands = split_opts([a for a in ctx.args if not _is_symbolic(a)])
    symbolic = [a for a in ctx.args if _is_symbolic(a)]
    spec = symbolic[0] if symbolic else (operands.pop(0) if operands else "")
    if not operands:
        raise ShimExit(1, "chmod: missing operand")
    status = 0
    for name in operands:
        vpath = ctx.path(name)
        try:
            info = ctx.fs.stat(vpath)
            ctx.mark(ctx.fs.chmod(vpath, parse_mode(spec, info.mode, info.kind == "dir")))
        except ValueError:
            raise ShimExit(1, f"chmod: invalid mode: {_q(spec)}") from None
        except FsError as exc:
            verb = "cannot access" if exc.errno == 2 else "changing permissions of"
            ctx.error(f"chmod: {verb} {_q(name)}: {exc.strerror}")
            status = 1
    return status


def _is_symbolic(arg: str) -> bool:
    return arg[:1] == "-" and len(arg) > 1 and all(c in "rwxXst" for c in arg[1:])


def chown(ctx: Ctx) -> int:
    _flags, _values, operands = split_opts(ctx.args)
    if len(operands) < 2:
        raise ShimExit(1, "chown: missing operand")
    spec, paths = operands[0], operands[1:]
    user, _, group = spec.partition(":")
    status = 0
    for name in paths:
        vpath = ctx.path(name)
        try:
            current = ctx.fs.stat(vpath).owner.split(":")
            owner = f"{user or current[0]}:{group or (user if spec.endswith(':') else current[1])}"
            ctx.mark(ctx.fs.chown(vpath, owner))
        except FsError as exc:
            verb = "cannot access" if exc.errno == 2 else "changing ownership of"
            ctx.error(f"chown: {verb} {_q(name)}: {exc.strerror}")
            status = 1
    return status


def _dest(ctx: Ctx, src: str, dst: str) -> str:
    vdst = ctx.path(dst)
    return posixpath.join(vdst, posixpath.basename(src.rstrip("/"))) if ctx.fs.is_dir(vdst) else vdst


def _copy_file(ctx: Ctx, src: str, dst: str, mode: int | None, owner: str | None = None) -> None:
    data = ctx.fs.read(src)
    existed = ctx.fs.exists(dst)
    ctx.mark(ctx.fs.write(dst, data, mode=mode if mode is not None or existed else ctx.fs.mode_of(src)))
    if owner is not None:
        ctx.mark(ctx.fs.chown(dst, owner))


def install(ctx: Ctx) -> int:
    flags, values, operands = split_opts(ctx.args, "mogtS")
    mode = parse_mode(values.get("m", values.get("mode", "755")), 0o755)
    owner = None
    if "o" in values or "g" in values:
        owner = f"{values.get('o', 'root')}:{values.get('g', values.get('o', 'root'))}"
    try:
        if "d" in flags or "directory" in flags:
            for name in operands:
                ctx.mark(ctx.fs.mkdir(ctx.path(name), parents=True, mode=mode))
            return 0
        if len(operands) < 2:
            raise ShimExit(1, "install: missing destination file operand")
        *sources, dst = operands
        if "D" in flags:
            ctx.mark(ctx.fs.mkdir(posixpath.dirname(ctx.path(dst)), parents=True))
        for src in sources:
            _copy_file(ctx, ctx.path(src), _dest(ctx, src, dst), mode, owner)
            if ctx.fs.mode_of(_dest(ctx, src, dst)) != mode:
                ctx.mark(ctx.fs.chmod(_dest(ctx, src, dst), mode))
    except FsError as exc:
        raise ShimExit(1, f"install: cannot create regular file {_q(exc.vpath)}: {exc.strerror}") from None
    return 0


def cp(ctx: Ctx) -> int:
    flags, _values, operands = split_opts(ctx.args)
    if len(operands) < 2:
        raise ShimExit(1, "cp: missing destination file operand")
    *sources, dst = operands
    recursive = bool({"r", "R", "a", "recursive", "archive"} & flags)
    preserve = bool({"a", "p", "archive"} & flags)
    status = 0
    for src in sources:
        vsrc = ctx.path(src)
        try:
            if ctx.fs.is_dir(vsrc):
                if not recursive:
                    ctx.error(f"cp: -r not specified; omitting directory {_q(src)}")
                    status = 1
                    continue
                _copy_tree(ctx, vsrc, _dest(ctx, src, dst), preserve)
            else:
                _copy_file(ctx, vsrc, _dest(ctx, src, dst), ctx.fs.mode_of(vsrc) if preserve else None)
        except FsError as exc:
            verb = "cannot stat" if exc.vpath == vsrc else "cannot create regular file"
            ctx.error(f"cp: {verb} {_q(exc.vpath)}: {exc.strerror}")
            status = 1
    return status


def _copy_tree(ctx: Ctx, src: str, dst: str, preserve: bool) -> None:
    ctx.mark(ctx.fs.mkdir(dst, parents=True))
    for name in ctx.fs.listdir(src):
        child_src, child_dst = posixpath.join(src, name), posixpath.join(dst, name)
        if ctx.fs.is_dir(child_src):
            _copy_tree(ctx, child_src, child_dst, preserve)
        else:
            _copy_file(ctx, child_src, child_dst, ctx.fs.mode_of(child_src) if preserve else None)


def mv(ctx: Ctx) -> int:
    _flags, _values, operands = split_opts(ctx.args)
    if len(operands) < 2:
        raise ShimExit(1, "mv: missing destination file operand")
    *sources, dst = operands
    status = 0
    for src in sources:
        try:
            ctx.mark(ctx.fs.rename(ctx.path(src), _dest(ctx, src, dst)))
        except FsError as exc:
            ctx.error(f"mv: cannot move {_q(src)} to {_q(dst)}: {exc.strerror}")
            status = 1
    return status


def ln(ctx: Ctx) -> int:
    flags, _values, operands = split_opts(ctx.args)
    if len(operands) < 2:
        raise ShimExit(1, "ln: missing destination file operand")
    target, link = operands[0], operands[1]
    vlink = ctx.path(link)
    if ctx.fs.is_dir(vlink) and not ("n" in flags and ctx.fs.is_symlink(vlink)):
        vlink = posixpath.join(vlink, posixpath.basename(target))
    try:
        if ctx.fs.lexists(vlink):
            if ctx.fs.is_symlink(vlink) and ctx.fs.readlink(vlink) == target:
                return 0
            if not ({"f", "force"} & flags):
                raise ShimExit(1, f"ln: failed to create symbolic link {_q(link)}: File exists")
            ctx.mark(ctx.fs.remove(vlink))
        if "s" in flags or "symbolic" in flags:
            ctx.mark(ctx.fs.symlink(target, vlink))
        else:
            _copy_file(ctx, ctx.path(target), vlink, None)
    except FsError as exc:
        raise ShimExit(1, f"ln: failed to create link {_q(link)}: {exc.strerror}") from None
    return 0


def touch(ctx: Ctx) -> int:
    _flags, _values, paths = split_opts(ctx.args)
    status = 0
    for name in paths:
        vpath = ctx.path(name)
        if ctx.fs.exists(vpath):
            continue
        try:
            ctx.mark(ctx.fs.write(vpath, b""))
        except FsError as exc:
            ctx.error(f"touch: cannot touch {_q(name)}: {exc.strerror}")
            status = 1
    return status


def ls(ctx: Ctx) -> int:
    flags, _values, paths = split_opts(ctx.args)
    status = 0
    for name in paths or ["."]:
        vpath = ctx.path(name)
        try:
            if not ctx.fs.lexists(vpath):
                raise FsError(2, vpath)
            names = [name] if not ctx.fs.is_dir(vpath) or "d" in flags else ctx.fs.listdir(vpath)
            for entry in names:
                full = vpath if (entry == name and not ctx.fs.is_dir(vpath)) or "d" in flags else f"{vpath}/{entry}"
                if "l" in flags:
                    info = ctx.fs.stat(full, follow=False)
                    kind = {"dir": stat_mod.S_IFDIR, "symlink": stat_mod.S_IFLNK}.get(info.kind, stat_mod.S_IFREG)
                    user, group = info.owner.split(":")
                    ctx.print(f"{stat_mod.filemode(kind | info.mode)} 1 {user} {group} {info.size:>8} {entry}")
                elif not entry.startswith(".") or "a" in flags:
                    ctx.print(entry)
        except FsError as exc:
            ctx.error(f"ls: cannot access {_q(name)}: {exc.strerror}")
            status = 2
    return status


def basename(ctx: Ctx) -> int:
    if not ctx.args:
        raise ShimExit(1, "basename: missing operand")
    base = posixpath.basename(ctx.args[0].rstrip("/")) or "/"
    if len(ctx.args) > 1 and base.endswith(ctx.args[1]) and base != ctx.args[1]:
        base = base[: -len(ctx.args[1])]
    ctx.print(base)
    return 0


def dirname(ctx: Ctx) -> int:
    for arg in ctx.args:
        ctx.print(posixpath.dirname(arg.rstrip("/")) or ".")
    return 0


def readlink(ctx: Ctx) -> int:
    flags, _values, paths = split_opts(ctx.args)
    status = 0
    for name in paths:
        vpath = ctx.path(name)
        if {"f", "e", "m"} & flags or ctx.prog == "realpath":
            real = ctx.host.vfs.real(vpath)
            if "e" in flags and not real.exists():
                status = 1
                continue
            ctx.print(ctx.host.vfs.virtual(real) if real.exists() else vpath)
            continue
        try:
            ctx.print(ctx.fs.readlink(vpath))
        except FsError:
            status = 1
    return status


SHIMS: dict[str, Shim] = {
    "cat": Shim(cat, "/usr/bin/cat", reads_stdin=no_file_args),
    "tee": Shim(tee, "/usr/bin/tee", reads_stdin=lambda _a: True),
    "mkdir": Shim(mkdir, "/usr/bin/mkdir"),
    "rm": Shim(rm, "/usr/bin/rm"),
    "chmod": Shim(chmod, "/usr/bin/chmod"),
    "chown": Shim(chown, "/usr/bin/chown"),
    "install": Shim(install, "/usr/bin/install"),
    "cp": Shim(cp, "/usr/bin/cp"),
    "mv": Shim(mv, "/usr/bin/mv"),
    "ln": Shim(ln, "/usr/bin/ln"),
    "touch": Shim(touch, "/usr/bin/touch"),
    "ls": Shim(ls, "/usr/bin/ls"),
    "basename": Shim(basename, "/usr/bin/basename"),
    "dirname": Shim(dirname, "/usr/bin/dirname"),
    "readlink": Shim(readlink, "/usr/bin/readlink"),
    "realpath": Shim(readlink, "/usr/bin/realpath"),
}
