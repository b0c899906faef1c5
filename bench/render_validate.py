"""Render + validate cost per cluster in capi_renderer, beside the same validation by ``jsonschema``.

Ours: Jinja2 render of a whole BYOH cluster (11 objects) plus strict validation against the carried CRD
schemas with the compiled validator of ``shared.crd_schema`` and every cross-object invariant. Peer:
validating the same rendered objects with the ``jsonschema`` library (Draft 7 validators built once
per kind), the approach the CAPI/BYOH research note used; unknown-field rejection is not part of it.
"""

from __future__ import annotations

import time
from pathlib import Path

from jsonschema import Draft7Validator

from bench.report import Figure
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.render import render_cluster
from services.capi_renderer.validate import render_and_validate
from shared.capi_api import carried_schemas
from shared.models import ClusterSpec, HostRef

REPO = Path(__file__).resolve().parents[1]
N = 1000
PEER_N = 100


def _spec(i: int) -> ClusterSpec:
    # Documentation-free private space outside the default pod (10.244/16) and service (10.96/12) ranges.
    hosts = [
        HostRef(host_id=f"c{i}-h{j}", host_name=f"c{i}-n{j}", host_ip=f"172.16.{i % 250}.{j + 1}") for j in range(8)
    ]
    cp = 3 if i % 2 else 1
    return ClusterSpec(
        name=f"cluster-{i}",
        k8s_version="1.31.2",
        control_plane=tuple(hosts[:cp]),
        workers=tuple(hosts[cp:]),
        vip=f"172.17.{i % 250}.1",
        cni="bridge-pool",
    )


async def run() -> list[Figure]:
    schemas = carried_schemas()
    options = RenderOptions(cni_manifests={"bridge-pool": REPO / "examples" / "cni" / "bridge-pool.yaml"})
    specs = [_spec(i) for i in range(N)]
    render_and_validate(specs[0], options, schemas)  # warm caches (templates, compiled schemas)
    t0 = time.perf_counter()
    for spec in specs:
        render_and_validate(spec, options, schemas)
    ours_ms = (time.perf_counter() - t0) / N * 1000

    validators: dict[tuple[str, str], Draft7Validator] = {}
    t0 = time.perf_counter()
    for spec in specs[:PEER_N]:
        for obj in render_cluster(spec, options):
            key = (obj["apiVersion"], obj["kind"])
            schema = schemas.schema(*key)
            if schema is None:
                continue
            validator = validators.get(key)
            if validator is None:
                validator = validators[key] = Draft7Validator(schema)
            list(validator.iter_errors(obj))
    peer_ms = (time.perf_counter() - t0) / PEER_N * 1000
    return [
        Figure(
            "render",
            f"render+validate per cluster ({N:,} clusters)",
            ours_ms,
            "ms",
            "render + jsonschema Draft7",
            peer_ms,
            "aim: under 5 ms; lower is better",
        )
    ]
