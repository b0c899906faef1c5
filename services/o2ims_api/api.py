"""What every route handler shares: settings, the state reader, the bus, and small response helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.o2ims_api.objects import Site, Snapshot
from services.o2ims_api.profile import ProfileReader
from services.o2ims_api.settings import O2imsApiSettings
from services.o2ims_api.state import State
from shared.bus import Bus
from shared.catalog import Catalog
from shared.httpapi.problems import not_found
from shared.safe_json import short

INVENTORY = "/o2ims-infrastructureInventory"
MONITORING = "/o2ims-infrastructureMonitoring"
PROVISIONING = "/o2ims-infrastructureProvisioning"
VERSION = "v1"


@dataclass
class Api:
    settings: O2imsApiSettings
    bus: Bus
    state: State
    catalog: Catalog
    profiles: ProfileReader
    #: The listener's own base URL, for messages sent without a request (notifications, registration).
    listen_url: str = ""

    def site(self) -> Site:
        s = self.settings
        return Site(self.state.global_cloud_id, s.cloud_name, s.cloud_description, s.global_location_id, s.location)

    async def snapshot(self, *, prs: bool = True, leases: bool = True, fresh: bool = True) -> Snapshot:
        """The state the objects are built from; ``fresh=False`` takes the KV views as they are (no request)."""
        return Snapshot(
            self.site(),
            await self.state.inventory(),
            await self.state.prs(fresh=fresh) if prs else {},
            await self.state.leases(fresh=fresh) if leases else {},
            dict(self.state.byohosts),
        )

    def base_url(self, request: web.Request | None = None) -> str:
        if self.settings.external_url:
            return self.settings.external_url.rstrip("/")
        if request is not None:
            return f"{request.scheme}://{request.host}"
        return self.listen_url


API_KEY = web.AppKey("o2ims_api", Api)


def api(request: web.Request) -> Api:
    return request.app[API_KEY]


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def uuid_param(request: web.Request, name: str, what: str) -> str:
    """A UUID path parameter, lower-cased; anything else names nothing here (404)."""
    value = request.match_info[name]
    if not _UUID.fullmatch(value):
        raise not_found(f"no {what} {short(value)}")
    return value.lower()


def find(items: list[dict[str, Any]], key: str, value: str) -> dict[str, Any] | None:
    return next((o for o in items if o.get(key) == value), None)
