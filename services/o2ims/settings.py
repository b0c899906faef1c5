"""Settings of the o2ims service (environment prefix ``O2_O2IMS_``, common fields ``O2_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class O2imsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_O2IMS_", extra="ignore", populate_by_name=True, frozen=True)
