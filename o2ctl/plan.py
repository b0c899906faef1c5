"""``o2ctl plan``: what a request would do, without touching anything.

Validates the inventory and the request exactly as focom does, checks feasibility against the
host leases when a system is running (and reachable), and renders and validates the CAPI
manifests exactly as capi_renderer would apply them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from o2ctl import client
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.settings import CapiRendererSettings
from services.capi_renderer.validate import render_and_validate
from services.focom.request import check_shape, create_specs
from services.focom.settings import FocomSettings
from shared.catalog import load_catalog
from shared.crd_schema import CrdSchemas
from shared.errors import InputError
from shared.inventory import load_inventory
from shared.leases import HostLeases
from shared.payloads import FocomRequest
from shared.settings import load_settings
from shared.subjects import BUCKET_HOSTS


async def _leases(t: client.Target | None) -> dict[str, str] | None:
    if t is None:
        return None
    try:
        bus = await client.open_bus(t)
    except client.Unreachable:
        return None
    try:
        return await HostLeases(await bus.kv(BUCKET_HOSTS)).all()
    except Exception:  # no bucket yet, or the system is half up: feasibility is then unknown
        return None
    finally:
        await bus.close()


def _render_options(cni_overrides: dict[str, Path]) -> tuple[RenderOptions, list[Path]]:
    s = load_settings(CapiRendererSettings)
    options = RenderOptions(
        core_api_version=s.core_api_version,
        kube_vip_image=s.kube_vip_image,
        cni_manifests={**s.cni_manifests, **cni_overrides},
        service_domain=s.service_domain,
    )
    return options, s.crd_dirs


async def plan(
    inventory_path: Path, request: FocomRequest, *, output: str, t: client.Target | None,
    cni: dict[str, Path], default_cni: str | None,
) -> int:  # fmt: skip
    focom = load_settings(FocomSettings)
    check_shape(request, max_clusters=focom.max_clusters_per_request)
    inventory = await asyncio.to_thread(load_inventory, inventory_path)
    catalog = load_catalog(focom.templates_dir)
    specs = create_specs(
        request, inventory, catalog, window=focom.k8s_window, default_cni=default_cni or focom.default_cni,
        max_clusters=focom.max_clusters_per_request,
    )  # fmt: skip
    leases = await _leases(t)
    conflicts = []
    if leases is not None:
        for spec in specs:
            for host in spec.all_hosts:
                holder = leases.get(host.host_id)
                if holder is not None:
                    conflicts.append({"cluster": spec.name, "host": host.host_id, "leased_to": holder})
    options, crd_dirs = _render_options(cni)
    schemas = CrdSchemas.from_dirs([d for d in crd_dirs if d.is_dir()]) if any(d.is_dir() for d in crd_dirs) else None
    rendered: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        rendered[spec.name] = render_and_validate(spec, options, schemas)
    feasible = not conflicts
    if output == "json":
        sys.stdout.write(json.dumps({
            "request": request.name, "operation": request.operation, "feasible": feasible,
            "feasibility_checked": leases is not None, "conflicts": conflicts,
            "schemas_checked": schemas is not None,
            "clusters": [{"spec": s.model_dump(mode="json"), "objects": rendered[s.name]} for s in specs],
        }, indent=1) + "\n")  # fmt: skip
    else:
        for spec in specs:
            sys.stdout.write(f"# cluster {spec.name}: {len(spec.control_plane)} control-plane, "
                             f"{len(spec.workers)} workers, {spec.k8s_version}, VIP {spec.vip}\n")  # fmt: skip
            sys.stdout.write(yaml.safe_dump_all(rendered[spec.name], sort_keys=False))
            sys.stdout.write("---\n")
        note = "not checked (no running system)" if leases is None else ("ok" if feasible else "CONFLICTS")
        print(f"# feasibility (host leases): {note}", file=sys.stderr)
        for c in conflicts:
            print(f"#   {c['cluster']}: host {c['host']} is leased to {c['leased_to']}", file=sys.stderr)
        if schemas is None:
            print("# CRD schema validation skipped: no CRD directory found (O2_CAPI_RENDERER_CRD_DIRS)",
                  file=sys.stderr)  # fmt: skip
    return 0 if feasible else 1


def parse_cni(values: list[str]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--cni expects NAME=FILE, got {value!r}", path="--cni")
        out[name] = Path(path)
    return out
