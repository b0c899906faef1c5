"""Settings of the capi_renderer service (environment prefix ``O2_CAPI_RENDERER_``, common fields ``O2_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CapiRendererSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="O2_CAPI_RENDERER_", extra="ignore", populate_by_name=True, frozen=True
    )
