"""The CRD, the example CRs and request files, and the CR ↔ request/status conversions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.focom import crs
from services.focom import request as rq
from shared.catalog import load_catalog
from shared.crd_schema import CrdSchemas
from shared.inventory import load_inventory
from shared.payloads import ChildStatus, FocomRequest, FprStatus, pr_id_for

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CR_FILES = sorted(EXAMPLES.glob("focom-*.yaml"))
REQUEST_FILES = sorted((EXAMPLES / "requests").glob("*.json"))


@pytest.fixture(scope="module")
def schemas() -> CrdSchemas:
    return CrdSchemas.from_dirs([REPO / "deploy" / "crds"])


def test_every_mode_and_operation_has_an_example() -> None:
    names = {p.stem for p in REQUEST_FILES}
    assert names == {
        f"{m}-{o}" for m in ("all-clusters", "cluster-names", "template") for o in ("create", "scale", "delete")
    } | {"cluster-names-upgrade"}
    assert len(CR_FILES) == 10 and (EXAMPLES / "focom-all-clusters.yaml") in CR_FILES


@pytest.mark.parametrize("path", CR_FILES, ids=[p.name for p in CR_FILES])
def test_example_crs_are_valid_requests(path: Path, schemas: CrdSchemas) -> None:
    obj = yaml.safe_load(path.read_text())
    assert schemas.validate(obj) == []
    defaulted = schemas.apply_defaults(obj)
    req = crs.request_from_cr(defaulted)
    rq.check_shape(req, max_clusters=100)
    assert req.name == obj["metadata"]["name"]
    request_file = EXAMPLES / "requests" / f"{path.stem.removeprefix('focom-')}.json"
    if not request_file.exists():
        request_file = EXAMPLES / "requests" / f"{path.stem.removeprefix('focom-')}-create.json"
    assert FocomRequest.model_validate(json.loads(request_file.read_text())) == req


def test_example_creates_resolve_against_the_example_inventory() -> None:
    inventory = load_inventory(EXAMPLES / "input.json")
    catalog = load_catalog()
    for path in REQUEST_FILES:
        req = FocomRequest.model_validate(json.loads(path.read_text()))
        rq.check_shape(req, max_clusters=100)
        if req.operation == "create":
            wanted = rq.create_targets(
                req, inventory, catalog, window=((1, 29), (1, 36)), vip_pool=False, max_clusters=100
            )
            specs = rq.create_specs(req, wanted, default_cni="calico", vips={})
            assert specs


def test_crd_keeps_every_field_we_read_and_write(schemas: CrdSchemas) -> None:
    obj: dict[str, Any] = {
        "apiVersion": crs.API_VERSION,
        "kind": crs.KIND,
        "metadata": {"name": "x", "namespace": "d"},
        "spec": {
            "operation": "scale",
            "clusterNames": ["a"],
            "workers": [{"hostId": "h1"}],
            "targetWorkerCount": None,
            "templateName": "t",
            "templateVersion": "v1.0.0",
            "templateParameters": {"clusterName": "a", "custom": {"deep": [1]}},
        },
    }
    obj["spec"].pop("targetWorkerCount")
    status = FprStatus(
        name="x",
        phase="Synced",
        message="ok",
        updated_at=datetime(2030, 1, 1, tzinfo=UTC),
        children=(ChildStatus(cluster="a", pr_id=pr_id_for("f", "a"), state="fulfilled"),),
        operation="create",
        generation=2,
    )
    obj["status"] = {**crs.status_body(obj, status)["status"], "observedGeneration": 3}
    pruned, errors = schemas.prune_unknown(obj)
    assert errors == [] and pruned == obj
    refusal = crs.refusal_body(obj, reason="InvalidRequest", message="m", path="$.x", at=datetime.now(UTC))
    assert schemas.validate({**obj, "status": refusal["status"]}) == []
    crd = yaml.safe_load((REPO / "deploy" / "crds" / "focomprovisioningrequests.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Phase", "Message"}
    assert version["subresources"] == {"status": {}}


def test_cr_conversion_errors_name_spec_paths() -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"allClusters": "maybe", "targetWorkerCount": -1}}
    with pytest.raises(rq.RequestError) as err:
        crs.request_from_cr(obj)
    assert {p.path for p in err.value.problems} == {"$.spec.allClusters", "$.spec.targetWorkerCount"}
    with pytest.raises(rq.RequestError):
        crs.request_from_cr({"metadata": {"name": "x"}})


def test_finalizer_patches() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x", "resourceVersion": "7", "finalizers": ["other"]}}
    add = crs.finalizer_patch(obj, present=True)
    assert add == {"metadata": {"finalizers": ["other", crs.FINALIZER], "resourceVersion": "7"}}
    assert crs.finalizer_patch(obj, present=False) is None
    obj["metadata"]["finalizers"].append(crs.FINALIZER)
    assert crs.finalizer_patch(obj, present=False) == {"metadata": {"finalizers": ["other"], "resourceVersion": "7"}}
    assert crs.delete_request("x") == FocomRequest(name="x", operation="delete", allClusters=True)
