"""Tokenizer of the sandbox command language: words with their quoting, operators, heredoc bodies.

Command substitution (``$(...)``, backticks) is refused here, before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .syntax import Heredoc, Lit, Param, Part, ShellSyntaxError, Word

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("&&", "||", ";;", "<<-", "<<", ">>", "&>", ">&", "<&", ">|", "|", "&", ";", "<", ">", "(", ")")
_OP_START = set("|&;<>()")
_PARAM_OPS = (":-", ":=", ":+", ":?", "-", "=", "+", "?")
_DQ_ESCAPABLE = set('$`"\\\n')


@dataclass
class Tok:
    kind: str  # word, op, io, newline, eof
    value: str = ""
    word: Word | None = None
    heredoc: Heredoc | None = None


class Lexer:
    def __init__(self, src: str) -> None:
        self.s = src
        self.i = 0
        self.pending: list[Heredoc] = []

    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.s[j] if j < len(self.s) else ""

    def tokens(self) -> list[Tok]:
        out: list[Tok] = []
        while True:
            c = self.peek()
            if c == "":
                out.append(Tok("eof"))
                return out
            if c in " \t":
                self.i += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
            elif c == "#":
                while self.peek() not in ("", "\n"):
                    self.i += 1
            elif c == "\n":
                self.i += 1
                out.append(Tok("newline"))
                self._read_heredocs()
            elif c in _OP_START:
                op = next(o for o in _OPS if self.s.startswith(o, self.i))
                self.i += len(op)
                tok = Tok("op", op)
                if op in ("<<", "<<-"):
                    tok.heredoc = self._heredoc_start(strip_tabs=op == "<<-")
                out.append(tok)
            else:
                start = self.i
                word = self.read_word()
                raw = self.s[start : self.i]
                if raw.isdigit() and self.peek() in ("<", ">"):
                    out.append(Tok("io", raw))
                else:
                    out.append(Tok("word", raw, word))

    def _heredoc_start(self, strip_tabs: bool) -> Heredoc:
        while self.peek() in (" ", "\t"):
            self.i += 1
        start = self.i
        word = self.read_word()
        raw = self.s[start : self.i]
        if not raw:
            raise ShellSyntaxError("syntax error near unexpected token `newline'")
        delim = "".join(p.text if isinstance(p, Lit) else "$" + p.name for p in word.parts)
        doc = Heredoc(delimiter=delim, expand=not any(q in raw for q in "'\"\\"), strip_tabs=strip_tabs)
        self.pending.append(doc)
        return doc

    def _read_heredocs(self) -> None:
        for doc in self.pending:
            lines: list[str] = []
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                line = self.s[self.i :] if end < 0 else self.s[self.i : end]
                self.i = len(self.s) if end < 0 else end + 1
                if doc.strip_tabs:
                    line = line.lstrip("\t")
                if line == doc.delimiter:
                    break
                lines.append(line + "\n")
            doc.body = "".join(lines)
            if doc.expand:
                doc.body_word = Lexer(doc.body).read_double_quoted(terminator=None)
        self.pending = []

    def read_word(self) -> Word:
        parts: list[Part] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), False))
                buf.clear()

        while True:
            c = self.peek()
            if c == "" or c in " \t\n" or c in _OP_START:
                break
            if c == "'":
                flush()
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("unexpected EOF while looking for matching `''")
                parts.append(Lit(self.s[self.i + 1 : end], True))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                parts.extend(self.read_double_quoted(terminator='"').parts)
            elif c == "\\":
                flush()
                nxt = self.peek(1)
                self.i += 2
                if nxt and nxt != "\n":
                    parts.append(Lit(nxt, True))
            elif c == "`":
                raise _substitution_error("`...`")
            elif c == "$":
                flush()
                parts.append(self._dollar(quoted=False))
            else:
                buf.append(c)
                self.i += 1
        flush()
        return Word(tuple(parts))

    def read_double_quoted(self, terminator: str | None) -> Word:
        parts: list[Part] = []
        buf: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                if terminator is not None:
                    raise ShellSyntaxError("unexpected EOF while looking for matching `\"'")
                break
            if terminator is not None and c == terminator:
                self.i += 1
                break
            if c == "\\" and self.peek(1) in _DQ_ESCAPABLE and self.peek(1):
                if self.peek(1) != "\n":
                    buf.append(self.peek(1))
                self.i += 2
            elif c == "`":
                raise _substitution_error("`...`")
            elif c == "$":
                if buf:
                    parts.append(Lit("".join(buf), True))
                    buf = []
                parts.append(self._dollar(quoted=True))
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append(Lit("".join(buf), True))
        return Word(tuple(parts))

    def _dollar(self, quoted: bool) -> Part:
        nxt = self.peek(1)
        if nxt == "(":
            raise _substitution_error("$(...)")
        if nxt == "{":
            end = self._matching_brace(self.i + 2)
            inner = self.s[self.i + 2 : end]
            self.i = end + 1
            return _braced_param(inner, quoted)
        if nxt == "'" and not quoted:
            end = self.i + 2
            while end < len(self.s) and self.s[end] != "'":
                end += 2 if self.s[end] == "\\" else 1
            if end >= len(self.s):
                raise ShellSyntaxError("unexpected EOF while looking for matching `''")
            raw = self.s[self.i + 2 : end]
            self.i = end + 1
            return Lit(_ansi_c(raw), True)
        if nxt and (nxt.isdigit() or nxt in "?#@*$!-"):
            self.i += 2
            return Param(nxt, quoted=quoted)
        m = _NAME.match(self.s, self.i + 1)
        if m:
            self.i = m.end()
            return Param(m.group(0), quoted=quoted)
        self.i += 1
        return Lit("$", quoted)

    def _matching_brace(self, start: int) -> int:
        depth, j, quote = 1, start, ""
        while j < len(self.s):
            c = self.s[j]
            if quote:
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        raise ShellSyntaxError("unexpected EOF while looking for matching `}'")


def _substitution_error(form: str) -> ShellSyntaxError:
    return ShellSyntaxError(
        f"command substitution {form} is not supported by the sandbox host shell (see docs/sandbox-hosts.md)"
    )


def _braced_param(inner: str, quoted: bool) -> Param:
    if inner.startswith("#") or inner.startswith("!"):
        raise ShellSyntaxError(f"${{{inner}}}: bad substitution")
    m = _NAME.match(inner) or re.match(r"[0-9?#@*$]", inner)
    if not m:
        raise ShellSyntaxError(f"${{{inner}}}: bad substitution")
    name, rest = m.group(0), inner[m.end() :]
    if not rest:
        return Param(name, quoted=quoted)
    op = next((o for o in _PARAM_OPS if rest.startswith(o)), None)
    if op is None:
        raise ShellSyntaxError(f"${{{inner}}}: bad substitution")
    lexer = Lexer(rest[len(op) :])
    arg = lexer.read_double_quoted(terminator=None) if quoted else lexer.read_word()
    return Param(name, op=op, arg=arg, quoted=quoted)


def _ansi_c(raw: str) -> str:
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "e": "\x1b", "0": "\0"}
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            out.append(table.get(raw[i + 1], "\\" + raw[i + 1]))
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)
