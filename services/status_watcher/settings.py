"""Settings of the status_watcher service (environment prefix ``O2_STATUS_WATCHER_``, common fields ``O2_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class StatusWatcherSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="O2_STATUS_WATCHER_", extra="ignore", populate_by_name=True, frozen=True
    )
