"""Bearer-token authentication: the admin token plus bootstrap tokens stored as Secrets in ``kube-system``.

Bootstrap tokens follow the real format (``<token-id>.<token-secret>``, Secret ``bootstrap-token-<id>`` of type
``bootstrap.kubernetes.io/token`` with ``usage-bootstrap-authentication: "true"`` and an optional RFC 3339
``expiration``). The index is updated from Secret writes, so a request costs one dict lookup.
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
        # secret name -> (token, expiry or None)
        self._bootstrap: dict[str, tuple[str, dt.datetime | None]] = {}
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
        token_id, expiry = found
        if expiry is not None and expiry <= dt.datetime.now(dt.UTC):
            return None
        return f"system:bootstrap:{token_id}"

    def observe_secret(self, name: str, secret: Mapping[str, Any] | None) -> None:
        """Called for every committed change of a Secret in ``kube-system`` (None when deleted)."""
        old = self._bootstrap.pop(name, None)
        if old is not None:
            self._by_token.pop(old[0], None)
        if secret is None or secret.get("type") != BOOTSTRAP_TYPE:
            return
        data = secret.get("data") or {}
        token_id, token_secret = _decode(data, "token-id"), _decode(data, "token-secret")
        if not (_TOKEN_ID.match(token_id) and _TOKEN_SECRET.match(token_secret)):
            return
        if name != f"bootstrap-token-{token_id}" or _decode(data, "usage-bootstrap-authentication") != "true":
            return
        expiration = _decode(data, "expiration")
        expiry = _parse_time(expiration) if expiration else None
        if expiration and expiry is None:
            return  # an unparsable expiration makes the real server reject the token
        token = f"{token_id}.{token_secret}"
        self._bootstrap[name] = (token, expiry)
        self._by_token[token] = (token_id, expiry)
