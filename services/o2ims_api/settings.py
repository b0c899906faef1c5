"""Settings of the O2IMS API (environment prefix ``O2_O2IMS_API_``, common fields ``O2_*``).

The listener, token checks, callbacks and inventory rules are those of every SMO-facing API
(``shared.httpapi.settings``); here are the O-Cloud's identity, the alarms and change detection,
and the management cluster read for ``profileData``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.httpapi.settings import HttpApiSettings


class O2imsApiSettings(HttpApiSettings):
    model_config = SettingsConfigDict(env_prefix="O2_O2IMS_API_", extra="ignore", populate_by_name=True, frozen=True)

    # -- identity of this O-Cloud -----------------------------------------------------------------
    #: The SMO's id of this O-Cloud; when unset, one is generated once and kept in KV.
    global_cloud_id: uuid.UUID | None = None
    cloud_name: str = Field("focom-o2ims", min_length=1, max_length=253)
    cloud_description: str = Field("BYOH bare-metal O-Cloud provisioned through FOCOM/O2IMS", max_length=1024)
    #: The location of the resource pools (``globalLocationId``).
    global_location_id: str = Field("unspecified", min_length=1, max_length=253)
    location: str = Field("", max_length=253)
    #: Register with the SMO at start-up (POST of the O-Cloud description); unset: no registration.
    smo_registration_url: str | None = Field(None, pattern=r"^https?://", max_length=2048)

    # -- alarms and change detection --------------------------------------------------------------
    #: Cleared alarms stay listed this many seconds (unless raised again meanwhile).
    alarm_retention: float = Field(7 * 24 * 3600.0, gt=0)
    #: Seconds between checks of the inventory file and of cleared alarms' retention (KV changes are watched).
    scan_interval: float = Field(2.0, gt=0, le=300)

    # -- the management cluster ---------------------------------------------------------------------
    #: Kubeconfig of the management cluster, for the kubeconfig Secrets behind ``profileData`` (admin only).
    kubeconfig: Path | None = None
    kube_timeout: float = Field(10.0, gt=0, le=120)
