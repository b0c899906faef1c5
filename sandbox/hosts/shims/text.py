"""Text shims: echo, printf, grep, head, tail, sha256sum, wc, sort, uniq, tr, cut."""

from __future__ import annotations

import hashlib
import re

from ..vfs import FsError
from . import Ctx, Shim, ShimExit, no_file_args
from .files import split_opts
from .regex import compile_posix

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}


def unescape(text: str) -> tuple[str, bool]:
    """Backslash escapes as echo -e / printf %b read them; the flag is True when ``\\c`` stops output."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "c":
                return "".join(out), True
            if nxt == "0":
                digits = re.match(r"[0-7]{0,3}", text[i + 2 :])
                octal = digits.group(0) if digits else ""
                out.append(chr(int(octal or "0", 8)))
                i += 2 + len(octal)
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out), False


def echo(ctx: Ctx) -> int:
    args = ctx.args
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = (escapes or "e" in args[0]) and "E" not in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = unescape(text)
        newline = newline and not stop
    ctx.print(text, end="\n" if newline else "")
    return 0


_SPEC = re.compile(r"%([-+ #0]*)(\d+|\*)?(?:\.(\d+))?([sdiouxXcbfeEgG%])")


def printf(ctx: Ctx) -> int:
    if not ctx.args:
        raise ShimExit(2, "printf: usage: printf [-v var] format [arguments]")
    fmt, args = ctx.args[0], list(ctx.args[1:])
    status = 0
    first = True
    while first or args:
        first = False
        consumed = False

        def convert(m: re.Match[str]) -> str:
            nonlocal consumed, status
            flags, width, precision, conv = m.groups()
            if conv == "%":
                return "%"
            consumed = True
            arg = args.pop(0) if args else ""
            if conv == "b":
                return unescape(arg)[0]
            if conv in "diouxXc":
                if conv == "c":
                    return arg[:1]
                try:
                    value: object = int(arg or "0", 0)
                except ValueError:
                    ctx.error(f"printf: {arg}: invalid number")
                    status = 1
                    value = 0
            elif conv in "feEgG":
                value = float(arg or "0")
            else:
                value = arg
            spec = "%" + flags + (width or "") + (f".{precision}" if precision else "") + ("d" if conv == "i" else conv)
            return spec % (value,)

        text = _SPEC.sub(convert, unescape(fmt)[0].replace("%%", "\0")).replace("\0", "%")
        ctx.out.write(text.encode())
        if not consumed:
            break
    return status


def _inputs(ctx: Ctx, files: list[str]) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for name in files or ["-"]:
        if name == "-":
            out.append(("(standard input)", ctx.stdin))
            continue
        try:
            out.append((name, ctx.fs.read(ctx.path(name))))
        except FsError as exc:
            if ctx.prog == "grep" and exc.errno == 21:
                ctx.error(f"grep: {name}: Is a directory")
            else:
                ctx.error(f"{ctx.prog}: {name}: {exc.strerror}")
            out.append((name, None))
    return out


def grep(ctx: Ctx) -> int:
    flags, values, operands = split_opts(ctx.args, "efmABC")
    patterns = [v for k, v in _repeated(ctx.args, "-e")] if "e" in values else []
    if not patterns:
        if not operands:
            raise ShimExit(2, "Usage: grep [OPTION]... PATTERNS [FILE]...")
        patterns = operands.pop(0).split("\n")
    extended = bool({"E", "extended-regexp"} & flags) or ctx.prog == "egrep"
    regexes = [
        compile_posix(
            p,
            extended=extended,
            fixed=bool({"F", "fixed-strings"} & flags) or ctx.prog == "fgrep",
            ignore_case=bool({"i", "ignore-case"} & flags),
            whole_line=bool({"x", "line-regexp"} & flags),
            whole_word=bool({"w", "word-regexp"} & flags),
        )
        for p in patterns
    ]
    invert, quiet = bool({"v", "invert-match"} & flags), bool({"q", "quiet", "silent"} & flags)
    inputs = _inputs(ctx, operands)
    show_names = (len(inputs) > 1 or "H" in flags) and "h" not in flags
    found, errors = False, False
    for name, data in inputs:
        if data is None:
            errors = True
            continue
        count = 0
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if any(r.search(line) for r in regexes) == invert:
                continue
            count += 1
            found = True
            if quiet:
                return 0
            if "l" in flags:
                break
            if "c" not in flags:
                text = "\n".join(m.group(0) for r in regexes for m in r.finditer(line)) if "o" in flags else line
                prefix = (f"{name}:" if show_names else "") + (f"{lineno}:" if "n" in flags else "")
                ctx.print(prefix + text)
        if "c" in flags:
            ctx.print((f"{name}:" if show_names else "") + str(count))
        elif "l" in flags and count:
            ctx.print(name)
    if errors and not ({"s", "no-messages"} & flags and found):
        return 2 if not found else 0
    return 0 if found else 1


def _repeated(args: list[str], opt: str) -> list[tuple[str, str]]:
    out = []
    for i, arg in enumerate(args):
        if arg == opt and i + 1 < len(args):
            out.append((opt, args[i + 1]))
        elif arg.startswith(opt) and len(arg) > len(opt):
            out.append((opt, arg[len(opt) :]))
    return out


def _count_arg(ctx: Ctx, default: int = 10) -> tuple[str, int, bool, list[str]]:
    """(unit "n"/"c", count, from_start ("+N"), files) for head/tail."""
    args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in ctx.args]
    _flags, values, files = split_opts(args, "nc")
    unit = "c" if "c" in values else "n"
    raw = values.get(unit, values.get("lines", str(default)))
    from_start = raw.startswith("+")
    try:
        return unit, int(raw.lstrip("+")), from_start, files
    except ValueError:
        raise ShimExit(1, f"{ctx.prog}: invalid number of lines: '{raw}'") from None


def head(ctx: Ctx) -> int:
    unit, count, _plus, files = _count_arg(ctx)
    status = 0
    for _name, data in _inputs(ctx, files):
        if data is None:
            status = 1
            continue
        if unit == "c":
            ctx.out.write(data[:count])
        else:
            ctx.out.write(b"".join(data.splitlines(keepends=True)[:count]))
    return status


def tail(ctx: Ctx) -> int:
    unit, count, from_start, files = _count_arg(ctx)
    status = 0
    for _name, data in _inputs(ctx, files):
        if data is None:
            status = 1
            continue
        if unit == "c":
            ctx.out.write(data[count - 1 :] if from_start else data[-count:] if count else b"")
            continue
        lines = data.splitlines(keepends=True)
        ctx.out.write(b"".join(lines[count - 1 :] if from_start else lines[-count:] if count else []))
    return status


def sha256sum(ctx: Ctx) -> int:
    flags, _values, files = split_opts(ctx.args)
    if {"c", "check"} & flags:
        return _sha256_check(ctx, flags, files)
    status = 0
    for name, data in _inputs(ctx, files):
        if data is None:
            status = 1
            continue
        ctx.print(f"{hashlib.sha256(data).hexdigest()}  {'-' if name == '(standard input)' else name}")
    return status


def _sha256_check(ctx: Ctx, flags: set[str], files: list[str]) -> int:
    quiet = bool({"status", "quiet"} & flags)
    failed = 0
    for _name, listing in _inputs(ctx, files):
        for line in (listing or b"").decode().splitlines():
            digest, _, target = line.strip().partition("  ")
            try:
                ok = hashlib.sha256(ctx.fs.read(ctx.path(target.lstrip("*")))).hexdigest() == digest
            except FsError as exc:
                ctx.error(f"sha256sum: {target}: {exc.strerror}")
                ok = False
            failed += not ok
            if not quiet:
                ctx.print(f"{target}: {'OK' if ok else 'FAILED'}")
    if failed and "status" not in flags:
        ctx.error(f"sha256sum: WARNING: {failed} computed checksum did NOT match")
    return 1 if failed else 0


def wc(ctx: Ctx) -> int:
    flags, _values, files = split_opts(ctx.args)
    selected = [f for f in "lwc" if f in flags] or ["l", "w", "c"]
    for name, data in _inputs(ctx, files):
        if data is None:
            continue
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data)}
        shown = " ".join(str(counts[f]) for f in selected)
        ctx.print(shown if name == "(standard input)" else f"{shown} {name}")
    return 0


def _lines(ctx: Ctx, files: list[str]) -> list[str]:
    return [line for _n, data in _inputs(ctx, files) if data for line in data.decode().splitlines()]


def sort(ctx: Ctx) -> int:
    flags, _values, files = split_opts(ctx.args)
    lines = _lines(ctx, files)
    key = (lambda s: float(re.match(r"\s*-?\d*\.?\d*", s).group(0) or 0)) if "n" in flags else None  # type: ignore[union-attr]
    lines.sort(key=key, reverse="r" in flags)
    if "u" in flags:
        lines = list(dict.fromkeys(lines))
    ctx.out.write("".join(line + "\n" for line in lines).encode())
    return 0


def uniq(ctx: Ctx) -> int:
    _flags, _values, files = split_opts(ctx.args)
    prev = None
    for line in _lines(ctx, files):
        if line != prev:
            ctx.print(line)
        prev = line
    return 0


_TR_CLASSES = {
    "[:lower:]": "a-z",
    "[:upper:]": "A-Z",
    "[:digit:]": "0-9",
    "[:space:]": " \t\n\r\f\v",
    "[:blank:]": " \t",
    "[:alpha:]": "a-zA-Z",
    "[:alnum:]": "a-zA-Z0-9",
}


def _tr_set(spec: str) -> str:
    for name, chars in _TR_CLASSES.items():
        spec = spec.replace(name, chars)
    spec = unescape(spec)[0]
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def tr(ctx: Ctx) -> int:
    flags, _values, sets = split_opts(ctx.args)
    text = ctx.stdin.decode("utf-8", "replace")
    first = _tr_set(sets[0]) if sets else ""
    if "d" in flags:
        ctx.out.write("".join(c for c in text if c not in first).encode())
        return 0
    second = _tr_set(sets[1]) if len(sets) > 1 else ""
    if not second:
        raise ShimExit(1, "tr: missing operand")
    table = {ord(a): second[min(i, len(second) - 1)] for i, a in enumerate(first)}
    ctx.out.write(text.translate(table).encode())
    return 0


def cut(ctx: Ctx) -> int:
    _flags, values, files = split_opts(ctx.args, "df")
    delim = values.get("d", "\t")
    wanted = [int(x) for x in values.get("f", "1").split(",") if x.isdigit()]
    for line in _lines(ctx, files):
        parts = line.split(delim)
        ctx.print(delim.join(parts[i - 1] for i in wanted if i <= len(parts)) if delim in line else line)
    return 0


SHIMS: dict[str, Shim] = {
    "echo": Shim(echo, "/usr/bin/echo"),
    "printf": Shim(printf, "/usr/bin/printf"),
    "grep": Shim(grep, "/usr/bin/grep", reads_stdin=lambda a: len(split_opts(a, "efmABC")[2]) <= ("-e" not in a)),
    "egrep": Shim(grep, "/usr/bin/egrep", reads_stdin=lambda a: len(split_opts(a, "efmABC")[2]) <= 1),
    "fgrep": Shim(grep, "/usr/bin/fgrep", reads_stdin=lambda a: len(split_opts(a, "efmABC")[2]) <= 1),
    "head": Shim(head, "/usr/bin/head", reads_stdin=lambda a: not _file_operands(a)),
    "tail": Shim(tail, "/usr/bin/tail", reads_stdin=lambda a: not _file_operands(a)),
    "sha256sum": Shim(sha256sum, "/usr/bin/sha256sum", reads_stdin=no_file_args),
    "wc": Shim(wc, "/usr/bin/wc", reads_stdin=no_file_args),
    "sort": Shim(sort, "/usr/bin/sort", reads_stdin=no_file_args),
    "uniq": Shim(uniq, "/usr/bin/uniq", reads_stdin=no_file_args),
    "tr": Shim(tr, "/usr/bin/tr", reads_stdin=lambda _a: True),
    "cut": Shim(cut, "/usr/bin/cut", reads_stdin=lambda a: not split_opts(a, "df")[2]),
}


def _file_operands(args: list[str]) -> list[str]:
    norm = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]
    return [f for f in split_opts(norm, "nc")[2] if f != "-"]
