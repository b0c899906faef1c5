"""Bearer-JWT authentication and role checks for the SMO-facing HTTP APIs, and optional mTLS.

Every request must carry ``Authorization: Bearer <JWT>``; the token's signature (a configured
public key, or the key of its ``kid`` from a JWKS URL), issuer, audience and expiry are checked
on every request (401 otherwise). Handlers declare the roles they need with ``@requires``; a
token without one of them (``admin`` always counts) gets 403. Roles are read from a claim
(``roles`` by default; a dotted path such as ``realm_access.roles`` reaches nested claims).

The sandbox and tests mint tokens with ``issue_token`` from a key made by ``generate_signing_key``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import jwt
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.httpapi.problems import HttpProblem, problem_response

log = structlog.get_logger(__name__)

Role = Literal["reader", "provisioner", "approver", "subscriber", "maintainer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "provisioner", "approver", "subscriber", "maintainer", "admin")
#: Reading is allowed to every role: a provisioner must see what it provisioned.
READ: tuple[Role, ...] = ROLES
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    claims: dict[str, Any] = field(repr=False)

    def has(self, *roles: str) -> bool:
        return "admin" in self.roles or any(r in self.roles for r in roles)


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str
    #: A PEM public key (RSA, EC or Ed25519) that signs every token …
    public_key_file: Path | None = None
    #: … or a JWKS document URL whose keys are chosen by the token's ``kid``.
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ASYMMETRIC
    roles_claim: str = "roles"
    leeway: float = 30.0
    jwks_timeout: float = 5.0

    def __post_init__(self) -> None:
        if (self.public_key_file is None) == (self.jwks_url is None):
            raise ValueError("configure exactly one of a public key file and a JWKS URL")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC]
        if bad:
            raise ValueError(f"only asymmetric signature algorithms are accepted, not {', '.join(bad)}")


class TokenError(Exception):
    """The token is missing, malformed, badly signed, expired or not meant for us."""


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._key: Any = None
        self._jwks: jwt.PyJWKClient | None = None
        if config.public_key_file is not None:
            self._key = serialization.load_pem_public_key(config.public_key_file.read_bytes())
        else:
            assert config.jwks_url is not None
            self._jwks = jwt.PyJWKClient(
                config.jwks_url, cache_keys=True, lifespan=300, timeout=int(config.jwks_timeout)
            )

    async def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            # PyJWKClient fetches over blocking urllib: keep it off the event loop.
            found = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("jwks_unreachable", error=type(exc).__name__)
            raise TokenError("the token's signing key cannot be fetched") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"no signing key for the token: {exc}") from None
        return found.key

    async def verify(self, token: str) -> Principal:
        c = self.config
        try:
            key = await self._signing_key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(c.algorithms),
                audience=c.audience,
                issuer=c.issuer,
                leeway=c.leeway,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc) or type(exc).__name__) from None
        return Principal(str(claims.get("sub", "")), frozenset(_roles(claims, c.roles_claim)), claims)


def _roles(claims: dict[str, Any], path: str) -> list[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        value = value.split()
    return [r for r in value if isinstance(r, str)] if isinstance(value, list) else []


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def requires(*roles: Role) -> Callable[[H], H]:
    """Declare the roles a handler needs (any one of them; ``admin`` always passes)."""

    def mark(handler: H) -> H:
        handler.required_roles = frozenset(roles)  # type: ignore[attr-defined]
        return handler

    return mark


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def auth_middleware(verifier: TokenVerifier, *, public: Iterable[str] = ()) -> Any:
    """Check the bearer token of every request (except ``public`` paths), then the handler's roles."""
    open_paths = frozenset(public)

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.rel_url.path in open_paths:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized(request, "a bearer token is required (Authorization: Bearer <JWT>)")
        try:
            who = await verifier.verify(token.strip())
        except TokenError as exc:
            return _unauthorized(request, f"invalid token: {exc}")
        request[PRINCIPAL_KEY] = who
        needed = _required(request)
        if needed is not None and not who.has(*needed):
            raise HttpProblem(
                403,
                f"this operation needs one of the roles {', '.join(sorted(needed))} (or admin); "
                f"the token has {', '.join(sorted(who.roles)) or 'none'}",
            )
        return await handler(request)

    return middleware


def _required(request: web.Request) -> frozenset[str] | None:
    handler = request.match_info.handler
    needed = getattr(handler, "required_roles", None)
    if needed is None:
        # Class-based or partial handlers: look through to the function.
        needed = getattr(getattr(handler, "__func__", None), "required_roles", None)
    return needed if isinstance(needed, frozenset) else None


def _unauthorized(request: web.Request, detail: str) -> web.Response:
    return problem_response(request, 401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


# ── TLS ────────────────────────────────────────────────────────────────────────────────


def server_ssl_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS for the API listener; with ``client_ca``, clients must present a certificate it signed (mTLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ── signing keys and tokens (sandbox, tests, o2ctl token) ─────────────────────────────────


def generate_signing_key(private_path: Path, public_path: Path) -> None:
    """An EC P-256 key pair (ES256): the private key written 0600, the public key beside it."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = private_path.with_name(private_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = tmp.open("xb")
    try:
        tmp.chmod(0o600)
        fd.write(pem)
    finally:
        fd.close()
    tmp.replace(private_path)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def issue_token(
    private_key_pem: bytes,
    *,
    issuer: str,
    audience: str,
    roles: Iterable[str] = ROLES,
    subject: str = "o2ctl",
    ttl: float = 3600.0,
    roles_claim: str = "roles",
    kid: str | None = None,
) -> str:
    """A signed JWT (ES256 for EC keys, RS256 for RSA keys, EdDSA for Ed25519) with the given roles."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    if type(key).__name__.startswith("Ed25519"):
        alg = "EdDSA"
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
        "jti": str(uuid.uuid4()),
        roles_claim: sorted(set(roles)),
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)  # type: ignore[arg-type]
