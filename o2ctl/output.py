"""How o2ctl prints: JSON/YAML documents, tables, and text safe to show.

Tables go through ``rich`` on a terminal. Anywhere else (a pipe, a file, CI logs) they are plain aligned
columns that never cut a cell: the JSON path of a problem is the one thing a user needs whole. Every cell,
title and comment passes through ``printable()`` first, so a value carrying a newline or another control
character (from a file, the bus or the cluster) cannot forge extra lines, YAML documents or terminal escapes.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

#: Unicode categories shown escaped: controls, format characters, line/paragraph separators, unassigned.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def printable(value: object) -> str:
    """``value`` as one line of text: control and invisible characters written as ``\\n``, ``\\x1b``,
    ``\\u2028``… (backslashes are kept as they are: messages that already quote a value with ``repr`` stay
    readable, and no character sequence can break the line either way)."""
    out = []
    for ch in str(value):
        if unicodedata.category(ch) in _UNSAFE:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def comment(text: object) -> str:
    """A ``#`` comment line for YAML output (one line whatever ``text`` holds)."""
    return f"# {printable(text)}\n"


def emit(value: Any, output: str, file: TextIO | None = None) -> None:
    """A machine-readable document: JSON (``-o json``) or YAML (``-o yaml``)."""
    out = file or sys.stdout
    if output == "yaml":
        out.write(yaml.safe_dump(json.loads(json.dumps(value, default=str)), sort_keys=False))
    else:
        out.write(json.dumps(value, indent=1, default=str) + "\n")


def machine(output: str) -> bool:
    return output in ("json", "yaml")


def is_terminal(file: TextIO | None = None) -> bool:
    stream = file or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    file: TextIO | None = None,
    *,
    footer: str | None = None,
) -> None:
    """A table: ``rich`` on a terminal, plain aligned columns (no cell ever cut) anywhere else."""
    out = file or sys.stdout
    cells = [[printable("" if c is None else c) for c in row] for row in rows]
    if is_terminal(out):
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=escape(printable(title)) if title else None)
        for col in columns:
            t.add_column(escape(col), overflow="fold")
        for row in cells:
            t.add_row(*(escape(c) for c in row))
        console = Console(file=out, highlight=False)
        console.print(t)
        if footer:
            console.print(escape(printable(footer)))
        return
    if title:
        out.write(printable(title) + "\n")
    widths = [max([len(col), *(len(row[i]) for row in cells)]) for i, col in enumerate(columns)]
    for row in [[c.upper() for c in columns], *cells]:
        out.write("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")
    if footer:
        out.write(printable(footer) + "\n")
