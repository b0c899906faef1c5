"""The chart's FOCOM API: off by default; on, a Deployment with FOCOM's request rules and its own NATS identity,
a Service, an optional Ingress for /focom, the token key (PEM Secret or JWKS URL); no Kubernetes access."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.focom_api.settings import FocomApiSettings
from tests.deploy.chart import FULL_VALUES, merge, render

NAME = "{release}-focom-o2ims-focom-api"
PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
ON: dict[str, Any] = {
    "focomApi": {
        "enabled": True,
        "auth": {"issuer": "https://idp.example/realms/smo", "publicKey": PEM},
        "callbackAllow": ["smo.example"],
        "ingress": {"enabled": True, "host": "focom.example.com"},
    }
}


def _name() -> str:
    from tests.deploy.chart import RELEASE

    return NAME.format(release=RELEASE)


def _env(r: Any) -> dict[str, Any]:
    (container,) = r.get("Deployment", _name())["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.focom_api"]
    return {e["name"]: e for e in container["env"]}


def test_off_by_default() -> None:
    assert not [d for d in render().of_kind("Deployment") if d["metadata"]["name"] == _name()]


def test_on_with_a_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = {"services": {"focom": {"settings": {"vip_pool": ["10.0.0.200/29"], "require_approval": True}}}}
    r = render(merge(FULL_VALUES, ON, pool))
    env = _env(r)
    assert env["O2_FOCOM_API_JWT_ISSUER"]["value"] == "https://idp.example/realms/smo"
    assert json.loads(env["O2_FOCOM_API_CALLBACK_ALLOW"]["value"]) == ["smo.example"]
    assert env["O2_FOCOM_API_INVENTORY_PATH"]["value"] == "/etc/focom-o2ims/inventory/input.json"
    assert env["O2_FOCOM_API_SSH_KEY_DIR"]["value"] == "/etc/focom-o2ims/ssh"
    assert env["O2_FOCOM_API_VIP_POOL"]["value"] == "true"
    assert env["O2_NATS_CREDS_FILE"]["value"].endswith("/focom_api.creds")
    for name, item in env.items():
        if "value" in item:
            monkeypatch.setenv(name, item["value"])
    settings = FocomApiSettings()
    assert settings.vip_pool and settings.port == 8000 and settings.callback_allow == ("smo.example",)
    assert r.get("Secret", f"{_name()}-auth")["stringData"]["jwt-public-key.pem"] == PEM
    service = r.get("Service", _name())
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {"api": "api", "http": "http"}
    ingress = r.get("Ingress", _name())
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/focom"]
    assert not [x for x in r.of_kind("Role") if x["metadata"]["name"] == _name()]
    # focom itself runs under change control with the setting.
    (focom,) = [d for d in r.of_kind("Deployment") if d["metadata"]["name"].endswith("-focom")]
    focom_env = {e["name"]: e.get("value") for e in focom["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert focom_env["O2_FOCOM_REQUIRE_APPROVAL"] == "true"
