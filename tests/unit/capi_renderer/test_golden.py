"""Golden renders: any change to the rendered YAML is a visible diff. ``UPDATE_GOLDEN=1`` rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.capi_renderer.render import parse_rendered, render_yaml
from services.capi_renderer.validate import validate_render
from shared.crd_schema import CrdSchemas

from .conftest import make_options, make_spec

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "v1beta1-1cp-2w-k8s1.30": ("v1beta1", 1, 2, "1.30.2"),
    "v1beta1-3cp-5w-k8s1.31": ("v1beta1", 3, 5, "v1.31.4"),
    "v1beta2-1cp-2w-k8s1.30": ("v1beta2", 1, 2, "1.30.2"),
    "v1beta2-3cp-5w-k8s1.31": ("v1beta2", 3, 5, "v1.31.4"),
    "v1beta1-1cp-2w-k8s1.28": ("v1beta1", 1, 2, "1.28.9"),
}


def _render(case: str) -> str:
    core, cp, workers, version = CASES[case]
    return render_yaml(make_spec(cp, workers, version), make_options(core))


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case: str) -> None:
    path = GOLDEN / f"{case}.yaml"
    text = _render(case)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path.name} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"render differs from {path.name} (UPDATE_GOLDEN=1 to accept)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_validates_against_crds_and_invariants(case: str, schemas: CrdSchemas) -> None:
    core, cp, workers, version = CASES[case]
    objects = parse_rendered((GOLDEN / f"{case}.yaml").read_text(encoding="utf-8"))
    assert validate_render(objects, make_spec(cp, workers, version), schemas, make_options(core)) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_super_admin_swap_only_from_1_29(case: str) -> None:
    text = (GOLDEN / f"{case}.yaml").read_text(encoding="utf-8")
    has_swap = "super-admin.conf" in text
    assert has_swap is (not case.endswith("1.28"))
    if has_swap:
        assert text.count("if [ -f /run/kubeadm/kubeadm.yaml ]; then sed -i") == 2


def test_golden_keeps_the_agent_placeholder_literally() -> None:
    for path in GOLDEN.glob("*.yaml"):
        assert '"{{ .DefaultNetworkInterfaceName }}"' in path.read_text(encoding="utf-8"), path.name
