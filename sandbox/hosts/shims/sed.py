"""``sed``: the subset host preparation needs (``s///``, ``d``, ``p``, ``a``/``i``/``c``; ``-i``, ``-n``, ``-E``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..vfs import FsError
from . import Ctx, Shim, ShimExit
from .regex import compile_posix, translate_replacement


@dataclass
class _Address:
    regex: re.Pattern[str] | None = None
    line: int | None = None
    last: bool = False

    def matches(self, text: str, lineno: int, is_last: bool) -> bool:
        if self.regex is not None:
            return self.regex.search(text) is not None
        if self.last:
            return is_last
        return lineno == self.line


@dataclass
class _Command:
    start: _Address | None
    end: _Address | None
    negate: bool
    name: str
    regex: re.Pattern[str] | None = None
    repl: str = ""
    count: int = 1  # 0 = global
    print_after: bool = False
    text: str = ""


class _ScriptParser:
    def __init__(self, script: str, extended: bool) -> None:
        self.s = script
        self.i = 0
        self.extended = extended

    def error(self, what: str) -> ShimExit:
        return ShimExit(1, f"sed: -e expression #1, char {self.i + 1}: {what}")

    def delimited(self, delim: str) -> str:
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                out.append(nxt if nxt == delim and delim != "\\" else c + nxt)
                self.i += 2
                continue
            if c == delim:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise self.error(f"unterminated `{'s' if delim else ''}' command")

    def address(self) -> _Address | None:
        if self.i >= len(self.s):
            return None
        c = self.s[self.i]
        if c in {"/", "\\"}:
            if c == "\\":
                self.i += 1
            delim = self.s[self.i]
            self.i += 1
            pattern = self.delimited(delim)
            flags = 0
            if self.s[self.i : self.i + 1] == "I":
                flags = re.IGNORECASE
                self.i += 1
            return _Address(regex=re.compile(compile_posix(pattern, extended=self.extended).pattern, flags))
        if c == "$":
            self.i += 1
            return _Address(last=True)
        m = re.match(r"\d+", self.s[self.i :])
        if m:
            self.i += m.end()
            return _Address(line=int(m.group(0)))
        return None

    def parse(self) -> list[_Command]:
        cmds: list[_Command] = []
        while self.i < len(self.s):
            while self.i < len(self.s) and self.s[self.i] in " \t\n;":
                self.i += 1
            if self.i >= len(self.s):
                break
            start = self.address()
            end = None
            if start is not None and self.s[self.i : self.i + 1] == ",":
                self.i += 1
                end = self.address()
            negate = self.s[self.i : self.i + 1] == "!"
            self.i += negate
            while self.i < len(self.s) and self.s[self.i] == " ":
                self.i += 1
            if self.i >= len(self.s):
                raise self.error("missing command")
            cmds.append(self.command(start, end, negate))
        return cmds

    def command(self, start: _Address | None, end: _Address | None, negate: bool) -> _Command:
        name = self.s[self.i]
        self.i += 1
        cmd = _Command(start, end, negate, name)
        if name == "s":
            delim = self.s[self.i]
            self.i += 1
            pattern = self.delimited(delim)
            cmd.repl = translate_replacement(self.delimited(delim))
            flags = re.match(r"[gpiI0-9]*", self.s[self.i :])
            text = flags.group(0) if flags else ""
            self.i += len(text)
            cmd.count = 0 if "g" in text else int(re.sub(r"\D", "", text) or "1")
            cmd.print_after = "p" in text
            cmd.regex = compile_posix(pattern, extended=self.extended, ignore_case="i" in text.lower())
        elif name in "aic":
            rest = self.s[self.i :].split("\n", 1)[0]
            self.i += len(rest)
            cmd.text = rest[1:].lstrip() if rest.startswith("\\") else rest.lstrip()
        elif name not in "dpq=":
            raise self.error(f"unknown command: `{name}'")
        return cmd


def _run(cmds: list[_Command], text: str, quiet: bool) -> str:
    lines = text.splitlines()
    out: list[str] = []
    active: dict[int, bool] = {}
    for lineno, original in enumerate(lines, 1):
        line = original
        is_last = lineno == len(lines)
        deleted = False
        after: list[str] = []
        for idx, cmd in enumerate(cmds):
            selected = _selected(cmd, idx, active, line, lineno, is_last)
            if not selected:
                continue
            if cmd.name == "s" and cmd.regex is not None:
                new, n = _substitute(cmd, line)
                line = new
                if n and cmd.print_after:
                    out.append(line)
            elif cmd.name == "d":
                deleted = True
                break
            elif cmd.name == "p":
                out.append(line)
            elif cmd.name == "a":
                after.append(cmd.text)
            elif cmd.name == "i":
                out.append(cmd.text)
            elif cmd.name == "c":
                out.append(cmd.text)
                deleted = True
                break
            elif cmd.name == "=":
                out.append(str(lineno))
            elif cmd.name == "q":
                if not quiet:
                    out.append(line)
                return "".join(x + "\n" for x in out)
        if not deleted and not quiet:
            out.append(line)
        out += after
    result = "".join(x + "\n" for x in out)
    if text and not text.endswith("\n") and result.endswith("\n"):
        result = result[:-1]
    return result


def _selected(cmd: _Command, idx: int, active: dict[int, bool], line: str, lineno: int, is_last: bool) -> bool:
    if cmd.start is None:
        hit = True
    elif cmd.end is None:
        hit = cmd.start.matches(line, lineno, is_last)
    elif active.get(idx):
        hit = True
        if cmd.end.matches(line, lineno, is_last):
            active[idx] = False
    else:
        hit = cmd.start.matches(line, lineno, is_last)
        active[idx] = hit and not (cmd.end.line is not None and cmd.end.line <= lineno)
    return hit != cmd.negate


def _substitute(cmd: _Command, line: str) -> tuple[str, int]:
    assert cmd.regex is not None
    if cmd.count <= 1:
        return cmd.regex.subn(cmd.repl, line, count=0 if cmd.count == 0 else 1)
    seen = 0

    def nth(m: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return m.expand(cmd.repl) if seen == cmd.count else m.group(0)

    new = cmd.regex.sub(nth, line)
    return new, int(seen >= cmd.count)


def sed(ctx: Ctx) -> int:
    args = list(ctx.args)
    scripts: list[str] = []
    files: list[str] = []
    in_place = quiet = extended = False
    while args:
        arg = args.pop(0)
        if arg in ("-e", "--expression") and args:
            scripts.append(args.pop(0))
        elif arg.startswith("-i") or arg.startswith("--in-place"):
            in_place = True
        elif arg in ("-n", "--quiet", "--silent"):
            quiet = True
        elif arg in ("-E", "-r", "--regexp-extended"):
            extended = True
        elif arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= set("nEris"):
            quiet, extended = quiet or "n" in arg, extended or bool({"E", "r"} & set(arg))
            in_place = in_place or "i" in arg
        else:
            files.append(arg)
    if not scripts:
        if not files:
            raise ShimExit(1, "Usage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...")
        scripts.append(files.pop(0))
    cmds = _ScriptParser("\n".join(scripts), extended).parse()
    if in_place:
        if not files:
            raise ShimExit(4, "sed: no input files")
        for name in files:
            try:
                original = ctx.fs.read(ctx.path(name)).decode("utf-8", "replace")
            except FsError as exc:
                raise ShimExit(2, f"sed: can't read {name}: {exc.strerror}") from None
            if not ctx.fs.can_write(ctx.path(name)):
                directory = ctx.path(name).rsplit("/", 1)[0] or "/"
                raise ShimExit(4, f"sed: couldn't open temporary file {directory}/sedXXXXXX: Permission denied")
            result = _run(cmds, original, quiet)
            if result != original:
                ctx.write_file(name, result.encode())
        return 0
    status = 0
    for name in files or ["-"]:
        if name == "-":
            text = ctx.stdin.decode("utf-8", "replace")
        else:
            try:
                text = ctx.fs.read(ctx.path(name)).decode("utf-8", "replace")
            except FsError as exc:
                ctx.error(f"sed: can't read {name}: {exc.strerror}")
                status = 2
                continue
        ctx.out.write(_run(cmds, text, quiet).encode())
    return status


def _reads_stdin(args: list[str]) -> bool:
    operands = [a for a in args if not a.startswith("-")]
    has_e = any(a in ("-e", "--expression") for a in args)
    return len(operands) <= (len([a for a in args if a in ("-e", "--expression")]) if has_e else 1)


SHIMS: dict[str, Shim] = {"sed": Shim(sed, "/usr/bin/sed", reads_stdin=_reads_stdin)}
