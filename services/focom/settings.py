"""Settings of the focom service (environment prefix ``O2_FOCOM_``, common fields ``O2_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FocomSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_FOCOM_", extra="ignore", populate_by_name=True, frozen=True)
