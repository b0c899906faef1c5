"""Word expansion for the sandbox shell: parameters, field splitting, tilde and globbing (inside the vfs)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from .syntax import Lit, Param, Word
from .vfs import HostFs, normalize

_MAGIC = re.compile(r"[*?\[]")


class ExpansionError(Exception):
    """``${x:?msg}`` or an unbound variable under ``set -u``; ``str()`` is the stderr text."""


Lookup = Callable[[str], str | None]
Assign = Callable[[str, str], None]


class Expander:
    def __init__(self, lookup: Lookup, assign: Assign, *, nounset: bool, home: str) -> None:
        self.lookup = lookup
        self.assign = assign
        self.nounset = nounset
        self.home = home

    def param(self, p: Param) -> str:
        value = self.lookup(p.name)
        op = p.op
        if op:
            unset_or_null = value is None or (op.startswith(":") and value == "")
            arg = self.string(p.arg) if p.arg is not None else ""
            base = op.lstrip(":")
            if base == "-":
                return arg if unset_or_null else value or ""
            if base == "=":
                if unset_or_null:
                    self.assign(p.name, arg)
                    return arg
                return value or ""
            if base == "+":
                return "" if unset_or_null else arg
            if base == "?":
                if unset_or_null:
                    raise ExpansionError(f"{p.name}: {arg or 'parameter null or not set'}")
                return value or ""
        if value is None:
            if self.nounset and p.name not in ("@", "*"):
                raise ExpansionError(f"{p.name}: unbound variable")
            return ""
        return value

    def string(self, word: Word) -> str:
        """Expand without field splitting or globbing (assignments, redirection targets, heredocs)."""
        out = []
        for i, part in enumerate(word.parts):
            if isinstance(part, Lit):
                text = part.text
                if i == 0 and not part.quoted:
                    text = self._tilde(text)
                out.append(text)
            else:
                out.append(self.param(part))
        return "".join(out)

    def _tilde(self, text: str) -> str:
        if text == "~" or text.startswith("~/"):
            return self.home + text[1:]
        return text

    def fields(self, word: Word, fs: HostFs | None, cwd: str) -> list[str]:
        """Expand into fields: unquoted expansions split on whitespace; unquoted wildcards glob."""
        if len(word.parts) == 1 and isinstance(word.parts[0], Lit):
            # Most words of a command line are one literal: one field, unless it is an unquoted pattern.
            lit = word.parts[0]
            if lit.quoted:
                return [lit.text]
            text = self._tilde(lit.text)
            if fs is None or not _MAGIC.search(text):
                return [text]
        fields: list[list[tuple[str, bool]]] = []
        current: list[tuple[str, bool]] = []
        started = False
        for i, part in enumerate(word.parts):
            if isinstance(part, Lit):
                text = self._tilde(part.text) if i == 0 and not part.quoted else part.text
                current.append((text, part.quoted))
                started = True
                continue
            value = self.param(part)
            if part.quoted:
                current.append((value, True))
                started = True
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[0].isspace() and started:
                fields.append(current)
                current = []
            for j, piece in enumerate(pieces):
                if j:
                    fields.append(current)
                    current = []
                current.append((piece, False))
                started = True
            if value[-1].isspace():
                fields.append(current)
                current = []
                started = False
        if started or current:
            fields.append(current)
        result: list[str] = []
        for segs in fields:
            if not segs:
                continue
            text = "".join(t for t, _ in segs)
            if fs is not None and any(not q and _MAGIC.search(t) for t, q in segs):
                pattern = "".join(t if not q else _escape(t) for t, q in segs)
                matches = glob(fs, pattern, cwd)
                result.extend(matches if matches else [text])
            else:
                result.append(text)
        return result


def _escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def glob(fs: HostFs, pattern: str, cwd: str) -> list[str]:
    """Pathname expansion against the host's virtual filesystem; relative patterns stay relative."""
    absolute = pattern.startswith("/")
    comps = [c for c in pattern.split("/") if c]
    candidates = ["/" if absolute else ""]
    for comp in comps:
        nxt: list[str] = []
        for base in candidates:
            base_abs = normalize(base or ".", cwd)
            if _MAGIC.search(comp):
                try:
                    names = fs.listdir(base_abs)
                except OSError:
                    continue
                for name in names:
                    if name.startswith(".") and not comp.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, comp):
                        nxt.append(_join(base, name))
            else:
                literal = re.sub(r"\[(.)\]", r"\1", comp)
                nxt.append(_join(base, literal))
        candidates = [c for c in nxt if fs.lexists(normalize(c, cwd))]
    return sorted(candidates)


def _join(base: str, name: str) -> str:
    if base == "":
        return name
    return base.rstrip("/") + "/" + name
