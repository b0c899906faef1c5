"""``o2ctl plan``: what a request would do, without touching anything.

Validates the inventory and the request exactly as focom does, checks feasibility against the
host leases when a system is running (and reachable), and renders and validates the CAPI
manifests exactly as capi_renderer would apply them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from o2ctl import client
from o2ctl.commands import focom_settings
from o2ctl.output import comment
from services.capi_renderer.cni_source import placeholder_text, shown
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.settings import CapiRendererSettings
from services.capi_renderer.validate import render_and_validate
from services.focom.request import Wanted, check_shape, create_specs, create_targets, vip_exclusions
from services.focom.settings import FocomSettings
from shared.capi_api import carried_schemas
from shared.catalog import load_catalog
from shared.crd_schema import CrdSchemas
from shared.errors import InputError
from shared.inventory import Inventory, load_inventory
from shared.leases import HostLeases
from shared.models import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, parse_cidr
from shared.payloads import FocomRequest
from shared.settings import load_settings
from shared.subjects import BUCKET_HOSTS
from shared.vips import first_free


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


def _render_options(
    s: CapiRendererSettings, cni_overrides: dict[str, Path], names: set[str], workdir: Path
) -> tuple[RenderOptions, list[dict[str, Any]]]:
    files, origins = _cni_files(s, cni_overrides, names, workdir)
    options = RenderOptions(
        core_api_version=s.core_api_version,
        kube_vip_image=s.kube_vip_image,
        cni_manifests=files,
        service_domain=s.service_domain,
    )
    return options, origins


def _cni_files(
    s: CapiRendererSettings, overrides: dict[str, Path], names: set[str], workdir: Path
) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """A local manifest for every CNI the plan needs, and where each comes from; nothing is downloaded.

    ``--cni NAME=FILE`` first, then what capi_renderer would use: a local file, a verified cached
    download, or (not downloaded yet) a placeholder naming the URL and the sha256 it must have.
    """
    sources = s.cni_sources_resolver()
    files: dict[str, Path] = {}
    origins: list[dict[str, Any]] = []
    for name in sorted(names):
        if name in overrides:
            files[name] = overrides[name]
            origins.append({"cni": name, "source": str(overrides[name]), "via": "--cni", "content": "file"})
            continue
        origin = sources.origin(name)
        path = sources.cached(name)
        content = "file" if not origin.is_url else "cached"
        if path is None:
            path, content = workdir / f"{name}.yaml", "placeholder"
            path.write_text(placeholder_text(origin), encoding="utf-8")
        files[name] = path
        origins.append(
            {
                "cni": name,
                "source": shown(origin.location),
                "via": origin.via,
                "sha256": origin.sha256,
                "content": content,
            }
        )
    return files, origins


def _schemas(s: CapiRendererSettings) -> CrdSchemas:
    """No cluster is asked: the carried CAPI/BYOH API, or the CRD files of ``crd_source=files``."""
    if s.crd_source != "files":
        return carried_schemas()
    missing = [str(d) for d in s.crd_dirs if not d.is_dir()]
    if missing or not s.crd_dirs:
        raise InputError(
            f"CRD directories not found: {', '.join(missing) or 'none given'}", path="O2_CAPI_RENDERER_CRD_DIRS"
        )
    return CrdSchemas.from_dirs(s.crd_dirs)


def _preview_vips(wanted: list[Wanted], inventory: Inventory, focom: FocomSettings) -> dict[str, str]:
    """The pool VIPs the clusters would get from an empty pool (focom allocates the real ones at request time)."""
    out: dict[str, str] = {}
    exclude = vip_exclusions(inventory)
    for w in wanted:
        if not w.needs_vip:
            continue
        avoid = [
            parse_cidr(w.cluster.pod_cidr or DEFAULT_POD_CIDR),
            parse_cidr(w.cluster.service_cidr or DEFAULT_SERVICE_CIDR),
        ]
        vip = first_free(focom.vip_pool_entries, exclude=exclude | set(out.values()), avoid=avoid)
        if vip is None:
            raise InputError(
                f"{w.vip_path} [vip-pool-exhausted]: the VIP pool has no free address",
                path=w.vip_path,
                reason="VipPoolExhausted",
            )
        out[w.cluster.cluster_name] = vip
    return out


async def plan(
    inventory_path: Path,
    request: FocomRequest,
    *,
    output: str,
    t: client.Target | None,
    cni: dict[str, Path],
    default_cni: str | None,
    ssh_key_dir: Path | None = None,
) -> int:
    focom = focom_settings(ssh_key_dir)
    check_shape(request, max_clusters=focom.max_clusters_per_request)
    inventory = await asyncio.to_thread(lambda: load_inventory(inventory_path, **focom.inventory_rules()))
    catalog = load_catalog(focom.templates_dir)
    wanted = create_targets(
        request,
        inventory,
        catalog,
        window=focom.k8s_window,
        vip_pool=bool(focom.vip_pool),
        max_clusters=focom.max_clusters_per_request,
    )
    specs = create_specs(
        request,
        wanted,
        default_cni=default_cni or focom.default_cni,
        vips=(pooled := _preview_vips(wanted, inventory, focom)),
    )
    leases = await _leases(t)
    conflicts = []
    if leases is not None:
        for spec in specs:
            for host in spec.all_hosts:
                holder = leases.get(host.host_id)
                if holder is not None:
                    conflicts.append({"cluster": spec.name, "host": host.host_id, "leased_to": holder})
    renderer = load_settings(CapiRendererSettings)
    schemas = _schemas(renderer)
    rendered: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="o2ctl-plan-") as workdir:
        names = {spec.cni for spec in specs if spec.cni is not None}
        options, cni_origins = _render_options(renderer, cni, names, Path(workdir))
        for spec in specs:
            rendered[spec.name] = render_and_validate(spec, options, schemas)
    feasible = not conflicts
    if output == "json":
        sys.stdout.write(
            json.dumps(
                {
                    "request": request.name,
                    "operation": request.operation,
                    "feasible": feasible,
                    "feasibility_checked": leases is not None,
                    "conflicts": conflicts,
                    "schemas_checked": True,
                    "cni": cni_origins,
                    "clusters": [{"spec": s.model_dump(mode="json"), "objects": rendered[s.name]} for s in specs],
                },
                indent=1,
            )
            + "\n"
        )
    else:
        # Only the YAML documents are data; every other line is a comment built by `comment()`, which keeps
        # any value (a name, a VIP, a lease holder read from the bus) on its one line.
        for spec in specs:
            endpoint = f"VIP {spec.vip}" if spec.vip else f"endpoint {spec.endpoint} (no VIP)"
            if spec.name in pooled:
                endpoint += " (a preview: the first free pool address; focom allocates it on acceptance)"
            sys.stdout.write(
                comment(
                    f"cluster {spec.name}: {len(spec.control_plane)} control-plane, "
                    f"{len(spec.workers)} workers, {spec.k8s_version}, {endpoint}"
                )
            )
            sys.stdout.write(yaml.safe_dump_all(rendered[spec.name], sort_keys=False))
            sys.stdout.write("---\n")
        note = "not checked (no running system)" if leases is None else ("ok" if feasible else "CONFLICTS")
        sys.stderr.write(comment(f"feasibility (host leases): {note}"))
        for c in conflicts:
            sys.stderr.write(comment(f"  {c['cluster']}: host {c['host']} is leased to {c['leased_to']}"))
        for o in cni_origins:
            shown_content = {
                "placeholder": "not downloaded by plan: the ConfigMap shows a placeholder",
                "cached": "the cached download",
                "file": "a local file",
            }[o["content"]]
            sys.stderr.write(comment(f"CNI {o['cni']}: from {o['source']} ({o['via']}; {shown_content})"))
    return 0 if feasible else 1


def parse_cni(values: list[str]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--cni expects NAME=FILE, got {value!r}", path="--cni")
        out[name] = Path(path)
    return out
