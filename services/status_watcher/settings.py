"""Settings of the status_watcher service (environment prefix ``O2_STATUS_WATCHER_``, common fields ``O2_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.settings import ServiceSettings


class StatusWatcherSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="O2_STATUS_WATCHER_", extra="ignore", populate_by_name=True, frozen=True
    )

    #: The management cluster's kubeconfig (``~`` is expanded).
    kubeconfig: Path = Path("~/.kube/config")
    kube_context: str | None = None
    #: Seconds per Kubernetes request (lists, gets); watches run for ``watch_timeout`` seconds.
    kube_timeout: float = Field(15.0, gt=0)
    #: Namespaces to watch, comma-separated; empty watches every namespace (one watch per kind).
    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    #: The CAPI core version to watch through; ``auto`` takes v1beta2 where the server serves it.
    capi_version: Literal["auto", "v1beta1", "v1beta2"] = "auto"
    #: Server-side timeout of one watch request; the watch resumes from its resourceVersion after it.
    watch_timeout: int = Field(300, ge=1)
    #: Backoff after any list/watch/publish error: first delay and cap (seconds).
    backoff_initial: float = Field(0.2, gt=0)
    backoff_max: float = Field(10.0, gt=0)
    #: Require the workload API (through ``<cluster>-kubeconfig``) to list every node Ready before ``ready``.
    probe_workload: bool = False
    probe_timeout: float = Field(10.0, gt=0)
    #: After a failed probe, probe again after this many seconds.
    probe_interval: float = Field(15.0, gt=0)
    probe_concurrency: int = Field(8, ge=1)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
