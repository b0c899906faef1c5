"""Subjects are named only in ``shared/subjects.py``: no other module writes one as a string.

The prefixes come from the streams' own subject filters (``focom.status``, ``hostprep.jobs`` …), so
a new stream is covered without touching this test. Payload ``type`` literals (``o2ims.status``
as a message type) are not subjects and are allowed: they are the ``type`` field's values.
"""

from __future__ import annotations

import ast
from pathlib import Path

from shared import subjects

ROOT = Path(__file__).resolve().parents[2]
CODE = ("shared", "services", "sandbox", "o2ctl", "bench")
ALLOWED = {ROOT / "shared" / "subjects.py"}


def _stream_subjects() -> list[str]:
    streams = [v for v in vars(subjects).values() if isinstance(v, subjects.StreamSpec)]
    return [s for stream in streams for s in stream.subjects]


def _prefixes() -> set[str]:
    return {".".join(s.split(".")[:2]) for s in _stream_subjects() if "." in s}


def _is_subject(text: str, prefixes: set[str], whole: set[str]) -> bool:
    """``hostprep.jobs.<pr>``-like text, or a whole subject (``focom.requests``). A bare two-token
    name (``focom.status``) is a message type or an id namespace, not a subject."""
    return text in whole or any(text.startswith(p + ".") for p in prefixes)


def _id_parts(tree: ast.AST) -> set[int]:
    """Constants given to ``derive_id``: namespaces of message ids, which may read like subjects."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "derive_id"]
    return {id(arg) for call in calls for arg in call.args}


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    skip = _id_parts(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            out.append((node.lineno, str(node.values[0].value)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def _type_literals(tree: ast.AST) -> set[int]:
    """Lines of ``type: Literal[...] = ...`` payload discriminators (message types, not subjects)."""
    return {n.lineno for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "type"}


def test_no_subject_is_written_outside_the_subjects_module() -> None:
    prefixes = _prefixes()
    whole = {s for s in _stream_subjects() if not s.endswith((">", "*"))}
    assert {"focom.status", "hostprep.jobs", "o2ims.requests", "k8s.status"} <= prefixes
    found = []
    for top in CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path in ALLOWED:
                continue
            tree = ast.parse(path.read_text(), str(path))
            types = _type_literals(tree)
            for line, text in _literals(tree):
                if line in types:
                    continue
                if _is_subject(text, prefixes, whole):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert found == []
