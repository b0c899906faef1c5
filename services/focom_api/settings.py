"""Settings of FOCOM's northbound API (environment prefix ``O2_FOCOM_API_``, common fields ``O2_*``).

The listener, token checks, callbacks and inventory rules are those of every SMO-facing API
(``shared.httpapi.settings``); tokens are checked as by the O2IMS API. Requests are validated with
FOCOM's rules, so the inventory rules here (VIP pool, SSH key directory, version window, templates)
must be FOCOM's: the chart and ``o2ctl up`` pass the same.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.httpapi.settings import HttpApiSettings


class FocomApiSettings(HttpApiSettings):
    model_config = SettingsConfigDict(env_prefix="O2_FOCOM_API_", extra="ignore", populate_by_name=True, frozen=True)

    #: Port of the API listener; 0 picks a free port.
    port: int = Field(8090, ge=0, le=65535)
    max_clusters_per_request: int = Field(1000, ge=1, le=2000)
