"""The CRDs' enums are the closed sets of ``shared.kinds``: a new operation, phase, state or stage reaches them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared import kinds
from tests.deploy.test_crds import CHART_CRD_DIR, CRD_DIR


def _props(crd: dict[str, Any], *path: str) -> dict[str, Any]:
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for key in path:
        node = node["properties"][key] if "properties" in node else node["items"]["properties"][key]
    return node


@pytest.mark.parametrize("directory", [CRD_DIR, CHART_CRD_DIR], ids=["deploy", "chart"])
def test_enums_follow_the_shared_kinds(directory: Any) -> None:
    fpr = yaml.safe_load((directory / "focomprovisioningrequests.yaml").read_text())
    assert _props(fpr, "spec", "operation")["enum"] == list(kinds.OPERATIONS)
    assert _props(fpr, "status", "phase")["enum"] == list(kinds.FPR_PHASES)
    pr = yaml.safe_load((directory / "provisioningrequests.yaml").read_text())
    status = ("status", "provisioningStatus")
    assert _props(pr, *status, "provisioningState")["enum"] == list(kinds.PR_STATES)
    assert _props(pr, *status, "provisioningStage")["enum"] == list(kinds.PR_STAGES)
