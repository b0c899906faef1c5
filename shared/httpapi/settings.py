"""Settings every SMO-facing HTTP API has: its listener (TLS, mTLS), token checks, callbacks, inventory rules.

Each API subclasses ``HttpApiSettings`` with its own ``env_prefix`` (``O2_O2IMS_API_``,
``O2_FOCOM_API_``) and its own fields; the common ``O2_*`` fields come from ``ServiceSettings``.
The API listens on its own port (``port``; 0 picks a free one, announced in the ``service_ready``
log line), beside the common health listener. Tokens are checked against ``jwt_public_key_file``
or ``jwks_url`` (exactly one), for ``jwt_issuer`` and ``jwt_audience``. TLS is on when a
certificate is given; with ``tls_client_ca_file`` clients must present a certificate (mTLS). The
inventory rules must be FOCOM's (the chart and ``o2ctl up`` pass the same), so that the API
validates as FOCOM does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, field_validator, model_validator

from shared.inventory import DEFAULT_MAX_BYTES, DEFAULT_SSH_KEY_DIR, InventoryRules, Window
from shared.models import DNS1123_LABEL, version_tuple
from shared.settings import ServiceSettings

if TYPE_CHECKING:  # the JWT library loads only where tokens are checked
    from shared.httpapi.auth import AuthConfig

#: Asymmetric signature algorithms only (a shared HMAC secret would let every verifier mint tokens).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class HttpApiSettings(ServiceSettings):
    # -- listener -------------------------------------------------------------------------------
    #: Address of the API listener (``0.0.0.0`` in pods).
    host: str = "127.0.0.1"
    #: Port of the API listener; 0 picks a free port.
    port: int = Field(8080, ge=0, le=65535)
    #: Let several local replicas share the port (SO_REUSEPORT; the kernel spreads connections).
    reuse_port: bool = False
    #: The base URL clients use (``Location``, ``serviceUri``), when behind a proxy; default: each request's URL.
    external_url: str | None = Field(None, pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$", max_length=2048)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: CA of client certificates; set, every client must present one (mutual TLS).
    tls_client_ca_file: Path | None = None

    # -- auth -----------------------------------------------------------------------------------
    jwt_issuer: str = Field("focom-o2ims", min_length=1)
    jwt_audience: str = Field("o2ims", min_length=1)
    jwt_public_key_file: Path | None = None
    jwks_url: str | None = Field(None, pattern=r"^https?://")
    jwt_algorithms: tuple[str, ...] = ALGORITHMS
    #: The claim holding the roles (dotted path for nested claims, e.g. ``realm_access.roles``).
    jwt_roles_claim: str = Field("roles", min_length=1)

    # -- notifications ----------------------------------------------------------------------------
    #: Hosts (names or addresses) subscription callbacks may point at (SSRF guard); empty refuses all.
    callback_allow: tuple[str, ...] = ()
    #: Seconds for one callback POST (and the GET probe on subscribe).
    callback_timeout: float = Field(5.0, gt=0, le=60)
    #: Failed deliveries in a row after which a callback counts as dead (marked; the O2IMS API raises an alarm).
    callback_dead_after: int = Field(5, ge=1, le=1000)

    # -- FOCOM's inventory rules ------------------------------------------------------------------
    #: The inventory (``input.json``); its credentials are never read out.
    inventory_path: Path = Path("input.json")
    inventory_max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024, le=256 * 1024 * 1024)
    #: The inventory's ``ssh_key_file`` entries must lie here (as for FOCOM's ``ssh_key_dir``; keys are never read).
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR
    #: FOCOM leases VIPs from a pool (``O2_FOCOM_VIP_POOL`` set): inventory clusters may omit their endpoint.
    vip_pool: bool = False
    #: Extra template files beside the built-in ones (as FOCOM's ``templates_dir``).
    templates_dir: Path | None = None
    default_cni: str | None = Field("calico", pattern=DNS1123_LABEL, max_length=63)
    k8s_min_version: str = "v1.29"
    k8s_max_version: str = "v1.36"

    @field_validator("k8s_min_version", "k8s_max_version")
    @classmethod
    def _minor(cls, value: str) -> str:
        parts = value.strip().lstrip("v").split(".")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a Kubernetes version vX.Y")
        return "v" + ".".join(parts[:2])

    @field_validator("callback_allow")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in value if h.strip())

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.jwt_public_key_file is None) == (self.jwks_url is None):
            raise ValueError("set exactly one of jwt_public_key_file and jwks_url")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        return self

    @property
    def k8s_window(self) -> Window:
        lo = version_tuple(self.k8s_min_version + ".0")
        hi = version_tuple(self.k8s_max_version + ".0")
        return (lo[0], lo[1]), (hi[0], hi[1])

    def inventory_rules(self) -> InventoryRules:
        return InventoryRules(
            max_bytes=self.inventory_max_bytes,
            window=self.k8s_window,
            vip_pool=self.vip_pool,
            ssh_key_dir=self.ssh_key_dir,
        )

    def auth(self) -> AuthConfig:
        from shared.httpapi.auth import AuthConfig

        return AuthConfig(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            public_key_file=self.jwt_public_key_file,
            jwks_url=self.jwks_url,
            algorithms=self.jwt_algorithms,
            roles_claim=self.jwt_roles_claim,
        )
