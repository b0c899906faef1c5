"""Regenerate the carried CAPI/BYOH API facts from the upstream CRD files.

    python -m shared.capi_api.generate [--upstream DIR] [--out DIR] [--check]

``--upstream`` is the directory of upstream CustomResourceDefinition YAMLs laid out as
``<group>/<plural>.yaml`` (default: ``crds`` in the ``shared`` directory beside the checkout, or
``$O2_CAPI_API_UPSTREAM``). For every kind the project renders, watches or simulates, one JSON
file is written: the CRD with its names, scope, versions, subresources, printer columns and the
structural schema (types, formats, enums, patterns, bounds, required, defaults, ``x-kubernetes-*``
markers, CEL rules), and without any ``description`` or other prose. Output is canonical (sorted
keys, fixed indentation, a trailing newline), so regenerating after an upstream bump gives a diff
that shows exactly which API facts moved. ``--check`` writes nothing and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shared.capi_api import CARRIED_DIR, INDEX_FILE, KINDS, REPO_ROOT

UPSTREAM_ENV = "O2_CAPI_API_UPSTREAM"
#: Schema keywords that carry upstream prose, never facts.
_PROSE = frozenset({"description", "title", "example", "examples", "externalDocs", "$comment"})
#: In a CEL rule only the expression, the field path and the reason are facts; messages are prose.
_RULE_KEYS = frozenset({"rule", "fieldPath", "reason", "optionalOldSelf"})
#: Of a served version, what the API server acts on (``deprecationWarning`` is prose).
_VERSION_KEYS = ("name", "served", "storage", "deprecated", "subresources", "additionalPrinterColumns")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def default_upstream() -> Path:
    configured = os.environ.get(UPSTREAM_ENV)
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "crds").resolve()


def strip_schema(node: Any) -> Any:
    """A schema node without prose; ``properties`` names, ``enum`` and ``default`` values are kept verbatim."""
    if isinstance(node, list):
        return [strip_schema(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PROSE:
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: strip_schema(sub) for name, sub in value.items()}
        elif key in ("default", "enum", "required", "x-kubernetes-list-map-keys"):
            out[key] = value  # data, not schema: a default may well contain a field called description
        elif key == "x-kubernetes-validations":
            out[key] = [{k: v for k, v in rule.items() if k in _RULE_KEYS} for rule in value]
        else:
            out[key] = strip_schema(value)
    return out


def carried_crd(upstream: Mapping[str, Any]) -> dict[str, Any]:
    """The project's description of one upstream CRD: the same API facts, no prose, no upstream metadata."""
    spec = upstream["spec"]
    versions = []
    for ver in spec["versions"]:
        own = {key: ver[key] for key in _VERSION_KEYS if key in ver}
        if "additionalPrinterColumns" in own:
            own["additionalPrinterColumns"] = [
                {k: v for k, v in col.items() if k not in _PROSE} for col in own["additionalPrinterColumns"]
            ]
        own["schema"] = {"openAPIV3Schema": strip_schema(ver["schema"]["openAPIV3Schema"])}
        versions.append(own)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": upstream["metadata"]["name"]},
        "spec": {"group": spec["group"], "names": spec["names"], "scope": spec["scope"], "versions": versions},
    }


def canonical(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(upstream_dir: Path) -> dict[str, str]:
    """File name (relative to the carried dir) → canonical text, for every carried kind and the index."""
    files: dict[str, str] = {}
    sources: dict[str, Any] = {}
    for group, plural, kind in KINDS:
        rel = f"{group}/{plural}.yaml"
        path = upstream_dir / rel
        raw = path.read_bytes()
        docs = [d for d in yaml.load_all(raw, Loader=_Loader) if isinstance(d, dict)]
        crds = [
            d
            for d in docs
            if d.get("kind") == "CustomResourceDefinition"
            and d["spec"]["names"]["kind"] == kind
            and d["spec"]["group"] == group
        ]
        if len(crds) != 1:
            raise ValueError(f"{path}: expected one CustomResourceDefinition of {kind}.{group}, found {len(crds)}")
        carried = carried_crd(crds[0])
        files[f"{group}_{plural}.json"] = canonical(carried)
        sources[rel] = {
            "kind": kind,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "versions": [v["name"] for v in carried["spec"]["versions"]],
        }
    files[INDEX_FILE] = canonical({"generator": "python -m shared.capi_api.generate", "upstream": sources})
    return files


def differences(expected: Mapping[str, str], out_dir: Path) -> list[str]:
    """Names of files that differ from, are missing in, or are extra in ``out_dir``."""
    present = {p.name for p in out_dir.glob("*.json")} if out_dir.is_dir() else set()
    diff = [
        name
        for name, text in expected.items()
        if not (out_dir / name).is_file() or (out_dir / name).read_text(encoding="utf-8") != text
    ]
    return sorted(diff + [name for name in present if name not in expected])


def write(expected: Mapping[str, str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.capi_api.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=Path, default=None, help=f"upstream CRD directory (${UPSTREAM_ENV})")
    parser.add_argument("--out", type=Path, default=CARRIED_DIR)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the files differ")
    args = parser.parse_args(argv)
    upstream = args.upstream or default_upstream()
    if not upstream.is_dir():
        sys.stderr.write(f"upstream CRD directory {upstream} not found (--upstream or ${UPSTREAM_ENV})\n")
        return 2
    expected = generate(upstream)
    diff = differences(expected, args.out)
    if args.check:
        for name in diff:
            sys.stderr.write(f"differs: {name}\n")
        return 1 if diff else 0
    write(expected, args.out)
    sys.stderr.write(f"{len(expected)} files in {args.out} ({len(diff)} changed)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
