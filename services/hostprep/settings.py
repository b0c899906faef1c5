"""Settings of the hostprep service (environment prefix ``O2_HOSTPREP_``, common fields ``O2_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class HostprepSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_HOSTPREP_", extra="ignore", populate_by_name=True, frozen=True)
