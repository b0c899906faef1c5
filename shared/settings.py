"""Settings: one pydantic-settings base shared by every service, one subclass per service.

Common fields (NATS connection, HTTP port, logging) are read from ``O2_*`` variables by every
service; a service's own fields are read with its prefix (``O2_HOSTPREP_*`` …). Settings are
built in ``main()`` and passed down; an invalid value stops the process at start with the
field's name (``load_settings``). Credentials are ``SecretStr`` and never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import InputError


def _common(name: str) -> AliasChoices:
    # Common fields are reachable by field name (constructor) and by the shared O2_ variable.
    return AliasChoices(name, f"O2_{name.upper()}")


class ServiceSettings(BaseSettings):
    """Fields every service has; subclasses set ``env_prefix`` for their own fields."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    #: NATS server URL(s), comma-separated.
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=_common("nats_url"))
    #: NATS user name (with ``O2_NATS_PASSWORD``).
    nats_user: str | None = Field(None, validation_alias=_common("nats_user"))
    #: NATS password; never logged.
    nats_password: SecretStr | None = Field(None, validation_alias=_common("nats_password"))
    #: NATS token; never logged.
    nats_token: SecretStr | None = Field(None, validation_alias=_common("nats_token"))
    #: NATS ``.creds`` file (JWT + nkey).
    nats_creds_file: Path | None = Field(None, validation_alias=_common("nats_creds_file"))
    #: CA bundle to verify the NATS server.
    nats_tls_ca: Path | None = Field(None, validation_alias=_common("nats_tls_ca"))
    #: Client certificate for NATS mutual TLS.
    nats_tls_cert: Path | None = Field(None, validation_alias=_common("nats_tls_cert"))
    #: Client key for NATS mutual TLS.
    nats_tls_key: Path | None = Field(None, validation_alias=_common("nats_tls_key"))
    #: Seconds per connection attempt.
    nats_connect_timeout: float = Field(5.0, gt=0, validation_alias=_common("nats_connect_timeout"))
    #: How long to keep retrying the first connection before giving up (seconds; 0 = forever).
    nats_startup_timeout: float = Field(120.0, ge=0, validation_alias=_common("nats_startup_timeout"))
    #: JetStream replicas for streams and buckets (3 in production clusters).
    stream_replicas: int = Field(1, ge=1, le=5, validation_alias=_common("stream_replicas"))
    #: Address of the health (/healthz, /readyz) and /metrics listener (``0.0.0.0`` in pods).
    http_host: str = Field("127.0.0.1", validation_alias=_common("http_host"))
    #: Port of that listener; 0 picks a free port, -1 disables it.
    http_port: int = Field(0, ge=-1, le=65535, validation_alias=_common("http_port"))
    #: Log level.
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", validation_alias=_common("log_level"))
    #: ``auto`` = JSON when stderr is not a terminal, a console renderer when it is.
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias=_common("log_format"))
    #: Seconds a stopping service waits for in-flight handlers before closing.
    drain_timeout: float = Field(20.0, gt=0, validation_alias=_common("drain_timeout"))


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment; invalid values raise ``InputError`` naming the fields."""
    try:
        return cls()
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in err["loc"]) or "<settings>"
            parts.append(f"{field}: {err['msg']}")
        raise InputError("invalid settings: " + "; ".join(parts), path=parts[0].split(":")[0]) from None
