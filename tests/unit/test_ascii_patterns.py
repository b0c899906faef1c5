"""Every validation pattern spells its classes in ASCII: ``\\d``, ``\\w`` and ``\\s`` match other scripts too.

Python's ``\\d`` matches Arabic-Indic and other digits (and ``int()`` reads them), so Arabic-Indic
``v1.31.4`` passed as Kubernetes v1.31.4; pydantic's Rust patterns behave the same. The scan reads the source
of the product (not the sandbox or tests) and looks at every pattern handed to ``re`` or to a
``pattern=`` argument, and at module constants named ``*_PATTERN``. A pattern compiled with
``re.ASCII`` is fine; a negated class such as ``[^\\s#]`` only gets stricter with Unicode and is
allowed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.inventory import InventoryError, validate_inventory
from shared.models import ClusterSpec, HostRef, normalize_version

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("shared", "services", "o2ctl")
_RE_FUNCS = {"compile", "match", "fullmatch", "search", "sub", "subn", "findall", "finditer", "split"}
_UNICODE_CLASS = re.compile(r"\\[dDwWsS]")
_NEGATED = re.compile(r"\[\^(?:\\.|[^\]\\])*\]")


def _ascii_flag(call: ast.Call) -> bool:
    names = {n.attr for n in ast.walk(call) if isinstance(n, ast.Attribute)}
    return bool(names & {"ASCII", "A"})


def _patterns(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            is_re = (
                isinstance(func, ast.Attribute)
                and func.attr in _RE_FUNCS
                and isinstance(func.value, ast.Name)
                and func.value.id == "re"
            )
            if is_re and node.args and isinstance(node.args[0], ast.Constant) and not _ascii_flag(node):
                yield node.lineno, str(node.args[0].value)
            for kw in node.keywords:
                if kw.arg == "pattern" and isinstance(kw.value, ast.Constant):
                    yield node.lineno, str(kw.value.value)
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and any(isinstance(t, ast.Name) and t.id.endswith("_PATTERN") for t in node.targets)
        ):
            yield node.lineno, node.value.value


def offending_patterns() -> list[str]:
    found = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, pattern in _patterns(tree):
                if _UNICODE_CLASS.search(_NEGATED.sub("", pattern)):
                    found.append(f"{path.relative_to(REPO)}:{line}: {pattern}")
    return found


def test_no_validation_pattern_uses_unicode_classes() -> None:
    assert offending_patterns() == []


def test_the_scan_finds_a_unicode_digit_class() -> None:
    tree = ast.parse(
        'import re\nX = re.compile(r"^v?\\d+$")\nY = re.compile(r"^\\d+$", re.ASCII)\n'
        'Z_PATTERN = r"[^\\s#]+"\nW_PATTERN = r"a\\sb"\n'
    )
    found = sorted(p for _, p in _patterns(tree) if _UNICODE_CLASS.search(_NEGATED.sub("", p)))
    assert found == sorted(["^v?\\d+$", "a\\sb"])


ARABIC = "v\u0661.\u0663\u0661.\u0664"  # v1.31.4 in Arabic-Indic digits


def test_unicode_digits_are_not_a_kubernetes_version() -> None:
    with pytest.raises(ValueError):
        normalize_version(ARABIC)
    with pytest.raises(InventoryError) as err:
        validate_inventory({"k8s_version": ARABIC, "hosts": [], "clusters": []})
    assert [(p.path, p.rule) for p in err.value.problems] == [("$.k8s_version", "k8s-version")]
    host = HostRef(host_id="h1", host_name="n1", host_ip="10.0.0.1")
    with pytest.raises(ValueError):
        ClusterSpec(name="c", k8s_version=ARABIC, control_plane=(host,))
