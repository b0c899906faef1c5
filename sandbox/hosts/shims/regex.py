"""POSIX basic/extended regular expressions (as grep and sed read them) translated to Python's ``re``."""

from __future__ import annotations

import re

_CLASSES = {
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
    "print": r" -~",
    "graph": r"!-~",
    "cntrl": r"\x00-\x1f\x7f",
}
_GNU_ESCAPES = {
    "s": r"\s",
    "S": r"\S",
    "w": r"\w",
    "W": r"\W",
    "b": r"\b",
    "B": r"\B",
    "<": r"\b",
    ">": r"\b",
    "n": r"\n",
    "t": r"\t",
    "`": r"\A",
    "'": r"\Z",
}
_BRE_ESCAPED_SPECIALS = set("(){}+?|")


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """Translate a bracket expression starting at ``pattern[i] == '['``; returns (text, next index)."""
    j = i + 1
    out = ["["]
    if j < len(pattern) and pattern[j] == "^":
        out.append("^")
        j += 1
    first = True
    while j < len(pattern):
        c = pattern[j]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        if c == "[" and pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            if end > 0 and pattern[j + 2 : end] in _CLASSES:
                out.append(_CLASSES[pattern[j + 2 : end]])
                j = end + 2
                first = False
                continue
        out.append("\\" + c if c in "\\[" or (c == "]" and first) else c)
        first = False
        j += 1
    # An unterminated bracket is a literal "[" (GNU grep reports an error; matching it literally is kinder).
    return r"\[", i + 1


def translate(pattern: str, *, extended: bool) -> str:
    out: list[str] = []
    i = 0
    at_start = True
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            text, i = _bracket(pattern, i)
            out.append(text)
            at_start = False
            continue
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            i += 2
            if not extended and nxt in _BRE_ESCAPED_SPECIALS:
                out.append(nxt)
                at_start = nxt == "("
            elif nxt in _GNU_ESCAPES:
                out.append(_GNU_ESCAPES[nxt])
                at_start = False
            elif nxt.isdigit():
                out.append("\\" + nxt)
                at_start = False
            else:
                out.append(re.escape(nxt))
                at_start = False
            continue
        i += 1
        if c == "*" and at_start:
            out.append(r"\*")
        elif not extended and c in _BRE_ESCAPED_SPECIALS:
            out.append("\\" + c)
        elif extended and c == "{" and not re.match(r"\d*(,\d*)?\}", pattern[i:]):
            out.append(r"\{")
        else:
            out.append(c)
        at_start = c == "^" or (extended and c in "(|")
    return "".join(out)


def compile_posix(
    pattern: str,
    *,
    extended: bool = False,
    fixed: bool = False,
    ignore_case: bool = False,
    whole_line: bool = False,
    whole_word: bool = False,
) -> re.Pattern[str]:
    body = re.escape(pattern) if fixed else translate(pattern, extended=extended)
    if whole_word:
        body = rf"(?<!\w)(?:{body})(?!\w)"
    if whole_line:
        body = rf"^(?:{body})$"
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


def translate_replacement(repl: str) -> str:
    """A sed replacement (``&``, ``\\1``, ``\\n``) as a Python ``re.sub`` template."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl):
            nxt = repl[i + 1]
            i += 2
            if nxt.isdigit():
                out.append(rf"\g<{nxt}>")
            elif nxt == "n":
                out.append("\n")
            elif nxt == "t":
                out.append("\t")
            else:
                out.append(nxt.replace("\\", "\\\\"))
            continue
        i += 1
        out.append(r"\g<0>" if c == "&" else c.replace("\\", "\\\\"))
    return "".join(out)
