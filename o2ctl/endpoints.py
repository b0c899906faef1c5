"""``o2ctl endpoints`` (where the running system answers) and ``o2ctl token`` (a bearer token it accepts).

Tokens are signed with the key ``o2ctl up`` keeps under the state dir (private key 0600); the
O2IMS API of that system trusts its public half. Other tools read ``o2ctl -o json endpoints``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from o2ctl import stack
from o2ctl.client import Unreachable, UsageError
from o2ctl.state import RunState
from shared.httpapi.auth import ROLES, issue_token


def endpoints(state: Path, output: str) -> int:
    run = RunState.load(state)
    if run is None or not run.nats_url:
        raise Unreachable(f"no running system found in {state} (start one with `o2ctl up`)")
    found: dict[str, str] = {"nats": run.nats_url}
    api = stack.api_url(state)
    if api and "o2ims_api" in run.children:
        found["o2ims_api"] = api
    focom_api = stack.focom_api_url(state)
    if focom_api and "focom_api" in run.children:
        found["focom_api"] = focom_api
    if run.kubeconfig:
        found["kubeconfig"] = run.kubeconfig
    found["state_dir"] = str(state)
    if output == "json":
        sys.stdout.write(json.dumps(found) + "\n")
    else:
        for name, value in found.items():
            print(f"{name:<12} {value}")
    return 0


def token(state: Path, roles: list[str], ttl: float) -> int:
    key = state / "o2ims-api" / "signing-key.pem"
    if not key.exists():
        raise Unreachable(f"no token-signing key in {state} (start the system with `o2ctl up`)")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise UsageError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
    print(
        issue_token(
            key.read_bytes(), issuer=stack.API_ISSUER, audience=stack.API_AUDIENCE, roles=roles or ROLES, ttl=ttl
        )
    )
    return 0
