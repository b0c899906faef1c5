"""The chart's O2IMS API: off by default; on, a Deployment with every setting it needs, a Service,
an optional Ingress, the token key (PEM Secret or JWKS URL), TLS/mTLS, and get-only Secret access."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest

from services.o2ims_api.settings import O2imsApiSettings
from tests.deploy.chart import FULL_VALUES, NAMESPACE, RELEASE, lint, merge, render

NAME = f"{RELEASE}-focom-o2ims-o2ims-api"
PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
ON: dict[str, Any] = {
    "o2imsApi": {
        "enabled": True,
        "auth": {"issuer": "https://idp.example/realms/smo", "publicKey": PEM},
        "callbackAllow": ["smo.example", "10.20.0.0/16"],
        "externalUrl": "https://o2ims.example.com",
    }
}


def _env(r: Any) -> dict[str, Any]:
    (container,) = r.get("Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_off_by_default() -> None:
    assert not [d for d in render().of_kind("Deployment") if d["metadata"]["name"] == NAME]


def test_on_with_a_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    r = render(merge(FULL_VALUES, ON))
    env = _env(r)
    assert env["O2_O2IMS_API_JWT_ISSUER"]["value"] == "https://idp.example/realms/smo"
    assert env["O2_O2IMS_API_JWT_PUBLIC_KEY_FILE"]["value"].endswith("/jwt-public-key.pem")
    assert json.loads(env["O2_O2IMS_API_CALLBACK_ALLOW"]["value"]) == ["smo.example", "10.20.0.0/16"]
    assert env["O2_O2IMS_API_EXTERNAL_URL"]["value"] == "https://o2ims.example.com"
    assert env["O2_O2IMS_API_INVENTORY_PATH"]["value"] == "/etc/focom-o2ims/inventory/input.json"
    assert env["O2_NATS_CREDS_FILE"]["value"].startswith("/etc/focom-o2ims/nats-auth/")
    assert "O2_O2IMS_API_JWKS_URL" not in env
    # The inventory rules FOCOM applies: its key directory and whether it has a VIP pool.
    assert env["O2_O2IMS_API_SSH_KEY_DIR"]["value"] == "/etc/focom-o2ims/ssh"
    assert env["O2_O2IMS_API_VIP_POOL"]["value"] == "false"
    with_pool = {"services": {"focom": {"settings": {"vip_pool": ["10.0.0.200/29"]}}}}
    pooled = _env(render(merge(FULL_VALUES, ON, with_pool)))
    assert pooled["O2_O2IMS_API_VIP_POOL"]["value"] == "true"
    # The rendered environment is one the service accepts.
    for name, item in env.items():
        if "value" in item:
            monkeypatch.setenv(name, item["value"])
    settings = O2imsApiSettings()
    assert settings.callback_allow == ("smo.example", "10.20.0.0/16") and settings.port == 8000
    assert r.get("Secret", f"{NAME}-auth")["stringData"]["jwt-public-key.pem"] == PEM
    service = r.get("Service", NAME)
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {"api": "api", "http": "http"}
    roles = [x for x in r.of_kind("Role") if x["metadata"]["name"] == NAME]
    assert sorted(x["metadata"]["namespace"] for x in roles) == ["core", "edge"]
    assert all(x["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}] for x in roles)


def test_jwks_tls_and_ingress() -> None:
    values = merge(
        ON,
        {
            "o2imsApi": {
                "auth": {"publicKey": "", "jwksUrl": "https://idp.example/jwks"},
                "tls": {"existingSecret": "api-tls", "clientCaSecret": "smo-ca"},
                "ingress": {"enabled": True, "host": "o2ims.example.com", "className": "nginx"},
            }
        },
    )
    r = render(values)
    env = _env(r)
    assert env["O2_O2IMS_API_JWKS_URL"]["value"] == "https://idp.example/jwks"
    assert "O2_O2IMS_API_JWT_PUBLIC_KEY_FILE" not in env
    assert env["O2_O2IMS_API_TLS_CLIENT_CA_FILE"]["value"].endswith("/ca.crt")
    ingress = r.get("Ingress", NAME)
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == [
        "/o2ims-infrastructureInventory",
        "/o2ims-infrastructureMonitoring",
        "/o2ims-infrastructureProvisioning",
    ]


def test_lints_clean_when_on() -> None:
    report = lint(merge(FULL_VALUES, ON))
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"o2imsApi": {"enabled": True, "auth": {"issuer": "x"}}}, "o2imsApi.auth.jwksUrl"),
        (
            {"o2imsApi": {"enabled": True, "auth": {"issuer": "x", "publicKey": PEM, "jwksUrl": "https://idp/jwks"}}},
            "not both",
        ),
        ({"o2imsApi": {"enabled": True, "auth": {"publicKey": PEM}}}, "o2imsApi.auth.issuer is required"),
        ({"o2imsApi": {"settings": {"port": 9}}}, "port"),
    ],
)
def test_refused_values(values: dict[str, Any], says: str) -> None:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as err:
        render(values, namespace=NAMESPACE)
    assert says in str(err.value)
