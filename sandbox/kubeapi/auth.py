"""Bearer-token authentication: the admin token, bootstrap tokens and service-account token Secrets.

Bootstrap tokens follow the real format (``<token-id>.<token-secret>``, Secret ``bootstrap-token-<id>`` in
``kube-system`` of type ``bootstrap.kubernetes.io/token`` with ``usage-bootstrap-authentication: "true"`` and
an optional RFC 3339 ``expiration``); they authenticate as ``system:bootstrap:<token-id>``. One sandbox
stand-in: a BYOH host's agent trades its bootstrap token for a client certificate whose user is
``byoh:host:<hostname>`` upstream; the emulator has no certificates, so a bootstrap token whose Secret is
labelled ``sandbox.focom-o2ims.io/byoh-host: <hostname>`` and carries the ``byoh:hosts`` extra group
authenticates as that user. Legacy service-account token Secrets (``kubernetes.io/service-account-token``,
annotation ``kubernetes.io/service-account.name``, ``data.token``) in any namespace authenticate as
``system:serviceaccount:<namespace>:<name>``. The index is updated from Secret writes, so a request costs
one dict lookup.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
from collections.abc import Mapping
from typing import Any

BOOTSTRAP_TYPE = "bootstrap.kubernetes.io/token"
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a type name
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
#: On a host agent's bootstrap-token Secret: the host it stands for (see the module docstring).
BYOH_HOST_LABEL = "sandbox.focom-o2ims.io/byoh-host"
BYOH_HOSTS_GROUP = "byoh:hosts"
_MIN_SA_TOKEN = 32
_TOKEN_ID = re.compile(r"^[a-z0-9]{6}$")
_TOKEN_SECRET = re.compile(r"^[a-z0-9]{16}$")


def _decode(data: Mapping[str, Any], key: str) -> str:
    raw = data.get(key)
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, ValueError):
        return ""


def _parse_time(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Authenticator:
    """Maps a bearer token to a user name, or None."""

    def __init__(self, admin_token: str) -> None:
        self._admin = admin_token
        # (namespace, secret name) -> the token it holds
        self._secrets: dict[tuple[str, str], str] = {}
        # token -> (user, expiry or None)
        self._by_token: dict[str, tuple[str, dt.datetime | None]] = {}

    def authenticate(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[7:].strip()
        if hmac.compare_digest(token.encode(), self._admin.encode()):
            return "admin"
        found = self._by_token.get(token)
        if found is None:
            return None
        user, expiry = found
        if expiry is not None and expiry <= dt.datetime.now(dt.UTC):
            return None
        return user

    def observe_secret(self, name: str, secret: Mapping[str, Any] | None, namespace: str = "kube-system") -> None:
        """Called for every committed change of a Secret (None when deleted)."""
        old = self._secrets.pop((namespace, name), None)
        if old is not None:
            self._by_token.pop(old, None)
        if secret is None:
            return
        found = (
            self._bootstrap_token(name, secret)
            if secret.get("type") == BOOTSTRAP_TYPE and namespace == "kube-system"
            else self._service_account_token(namespace, secret)
            if secret.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE
            else None
        )
        if found is None:
            return
        token, user, expiry = found
        self._secrets[(namespace, name)] = token
        self._by_token[token] = (user, expiry)

    @staticmethod
    def _bootstrap_token(name: str, secret: Mapping[str, Any]) -> tuple[str, str, dt.datetime | None] | None:
        data = secret.get("data") or {}
        token_id, token_secret = _decode(data, "token-id"), _decode(data, "token-secret")
        if not (_TOKEN_ID.match(token_id) and _TOKEN_SECRET.match(token_secret)):
            return None
        if name != f"bootstrap-token-{token_id}" or _decode(data, "usage-bootstrap-authentication") != "true":
            return None
        expiration = _decode(data, "expiration")
        expiry = _parse_time(expiration) if expiration else None
        if expiration and expiry is None:
            return None  # an unparsable expiration makes the real server reject the token
        user = f"system:bootstrap:{token_id}"
        labels = (secret.get("metadata") or {}).get("labels") or {}
        host = labels.get(BYOH_HOST_LABEL)
        groups = [g.strip() for g in _decode(data, "auth-extra-groups").split(",")]
        if isinstance(host, str) and host and BYOH_HOSTS_GROUP in groups:
            user = f"byoh:host:{host}"
        return f"{token_id}.{token_secret}", user, expiry

    @staticmethod
    def _service_account_token(namespace: str, secret: Mapping[str, Any]) -> tuple[str, str, None] | None:
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        account = annotations.get(SERVICE_ACCOUNT_NAME_ANNOTATION)
        token = _decode(secret.get("data") or {}, "token")
        if not isinstance(account, str) or not account or len(token) < _MIN_SA_TOKEN:
            return None
        return token, f"system:serviceaccount:{namespace}:{account}", None
