"""Inventory routes: ``GET /inventory`` (the validated inventory, every credential removed) and
``POST /inventory/validate`` (FOCOM's rules over an uploaded inventory; nothing is stored)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from services.focom_api.api import BASE, api, inventory_or_fail, problems_json
from shared.httpapi.auth import READ, requires
from shared.inventory import Inventory, InventoryError, parse_inventory


def redacted(inventory: Inventory) -> dict[str, Any]:
    """The inventory without secrets: no password, no key file; only which kind of credential a host has."""
    data = inventory.model_dump(mode="json", exclude={"schema_ref"})
    for raw, host in zip(data["hosts"], inventory.hosts, strict=True):
        raw.pop("host_pwd", None)
        raw.pop("ssh_key_file", None)
        raw["credential"] = "key" if host.ssh_key_file else "password" if host.host_pwd else "agent"
    return data


@requires(*READ)
async def get_inventory(request: web.Request) -> web.Response:
    return web.json_response(redacted(await inventory_or_fail(api(request))))


@requires(*READ)
async def validate(request: web.Request) -> web.Response:
    a = api(request)
    raw = await request.content.read(a.settings.inventory_max_bytes + 1)
    try:
        model = await asyncio.to_thread(
            parse_inventory, raw, source="uploaded inventory", **a.settings.inventory_rules()
        )
    except InventoryError as exc:
        return web.json_response({"valid": False, "problems": problems_json(list(exc.problems))})
    return web.json_response(
        {"valid": True, "problems": [], "hosts": len(model.hosts), "clusters": len(model.clusters)}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", f"{BASE}/inventory", get_inventory)
    app.router.add_route("POST", f"{BASE}/inventory/validate", validate)
