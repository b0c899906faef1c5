"""The chart's closed bus: per-service NATS identities and permissions, NetworkPolicies, no exposed monitor port.

The permissions the chart carries (``files/nats-permissions.json``) are generated from ``shared/subjects.py``;
the rendered embedded-NATS configuration is run by a real nats-server with the rendered Secret's passwords,
and a service's identity is refused a subject outside its role.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nats
import nats.errors
import pytest

from shared.natsroles import ROLES, all_permissions
from shared.natsserver import EmbeddedNats
from tests.deploy.chart import CHART, COMPONENTS, MODULES, RELEASE, render

PERMISSIONS_FILE = CHART / "files" / "nats-permissions.json"
USERS_SECRET = f"{RELEASE}-focom-o2ims-nats-users"


def test_the_chart_carries_the_permissions_generated_from_the_subject_map() -> None:
    carried = json.loads(PERMISSIONS_FILE.read_text(encoding="utf-8"))
    assert carried == all_permissions(), (
        "deploy/helm/focom-o2ims/files/nats-permissions.json is stale; regenerate it with\n"
        "  python -m shared.natsauth permissions > deploy/helm/focom-o2ims/files/nats-permissions.json"
    )


def test_every_service_connects_as_its_own_role_with_its_own_generated_password() -> None:
    r = render()
    users = r.get("Secret", USERS_SECRET)["data"]
    assert set(users) == {role.name for role in ROLES}
    passwords = [base64.b64decode(v).decode() for v in users.values()]
    assert len(set(passwords)) == len(passwords) and all(len(p) == 40 for p in passwords)
    for key in COMPONENTS:
        env = r.env(key)
        assert env["O2_NATS_USER"]["value"] == MODULES[key]
        assert env["O2_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": USERS_SECRET, "key": MODULES[key]}
        assert "O2_NATS_TOKEN" not in env


def test_embedded_nats_declares_every_role_with_its_permissions_and_hides_the_monitor_port() -> None:
    r = render()
    conf = r.get("ConfigMap", f"{RELEASE}-focom-o2ims-nats")["data"]["nats.conf"]
    for role, perms in all_permissions().items():
        line = next(ln for ln in conf.splitlines() if f'user: "{role}"' in ln)
        assert f"password: $NATS_PASSWORD_{role.upper()}," in line
        block = conf[conf.index(line) :]
        allowed = re.search(r"publish: \{allow: \[(.*?)\]\}", block)
        assert allowed is not None and json.loads(f"[{allowed.group(1)}]") == perms["publish"]["allow"]
    assert 'password: "' not in conf, "no password value in the ConfigMap"
    container = r.get("StatefulSet", f"{RELEASE}-focom-o2ims-nats")["spec"]["template"]["spec"]["containers"][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs == {f"NATS_PASSWORD_{role.name.upper()}": {"name": USERS_SECRET, "key": role.name} for role in ROLES}
    ports = r.get("Service", f"{RELEASE}-focom-o2ims-nats")["spec"]["ports"]
    assert [p["port"] for p in ports] == [4222], "the monitoring port 8222 is not exposed"


def test_network_policies_admit_only_our_pods_to_nats_and_only_the_http_port_to_services() -> None:
    r = render()
    nats_np = r.get("NetworkPolicy", f"{RELEASE}-focom-o2ims-nats")
    selector = {"app.kubernetes.io/name": "focom-o2ims", "app.kubernetes.io/instance": RELEASE}
    assert nats_np["spec"]["podSelector"]["matchLabels"] == {**selector, "app.kubernetes.io/component": "nats"}
    (rule,) = nats_np["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": selector}}]
    assert rule["ports"] == [{"port": "client", "protocol": "TCP"}]
    services = r.get("NetworkPolicy", f"{RELEASE}-focom-o2ims-services")
    (expr,) = services["spec"]["podSelector"]["matchExpressions"]
    assert sorted(expr["values"]) == sorted(COMPONENTS.values())
    (rule,) = services["spec"]["ingress"]
    assert rule == {"ports": [{"port": "http", "protocol": "TCP"}]}
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    limited = render({"networkPolicy": {"metricsFrom": peers}})
    assert limited.get("NetworkPolicy", f"{RELEASE}-focom-o2ims-services")["spec"]["ingress"][0]["from"] == peers
    assert render({"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []


def test_an_open_bus_needs_the_loud_trial_switch() -> None:
    r = render({"nats": {"auth": {"method": "none", "trialInsecureOpenBus": True}}})
    conf = r.get("ConfigMap", f"{RELEASE}-focom-o2ims-nats")["data"]["nats.conf"]
    assert "authorization" not in conf and r.of_kind("Secret") == []
    assert all("O2_NATS_USER" not in r.env(key) for key in COMPONENTS)
    assert "WARNING: nats.auth.method=none" in r.notes and "WARNING" not in render().notes


async def test_the_rendered_nats_config_refuses_a_service_a_subject_outside_its_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = render()
    conf = r.get("ConfigMap", f"{RELEASE}-focom-o2ims-nats")["data"]["nats.conf"]
    path = tmp_path / "nats.conf"
    # The store and ports come from EmbeddedNats's command line (which refuses a second store_dir).
    path.write_text(conf.replace("store_dir: /data", ""), encoding="utf-8")
    passwords = {k: base64.b64decode(v).decode() for k, v in r.get("Secret", USERS_SECRET)["data"].items()}
    monkeypatch.setenv("POD_NAME", "nats-0")
    for role, password in passwords.items():
        monkeypatch.setenv(f"NATS_PASSWORD_{role.upper()}", password)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    async with EmbeddedNats(tmp_path / "nats", config=path, log_file=tmp_path / "nats.log") as server:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0)
        nc = await nats.connect(
            server.url,
            user="capi_renderer",
            password=passwords["capi_renderer"],
            inbox_prefix="_INBOX.capi_renderer",
            error_cb=on_error,
            allow_reconnect=False,
        )
        try:
            js = nc.jetstream(timeout=2.0)
            await js.add_stream(name="CAPI", subjects=["capi.jobs.>", "capi.events.>"])
            await js.publish("capi.events.pr1", b"{}")  # its own events: allowed
            # A delete job for any cluster, or a host teardown: refused by the server.
            for subject in ("capi.jobs.pr1", "hostprep.jobs.pr1"):
                with pytest.raises(nats.errors.TimeoutError):
                    await js.publish(subject, b"{}")
            assert any('"capi.jobs.pr1"' in e for e in errors) and any('"hostprep.jobs.pr1"' in e for e in errors)
            assert (await js.stream_info("CAPI")).state.messages == 1
        finally:
            await nc.close()


def test_the_o2ims_api_connects_as_its_own_role() -> None:
    from tests.deploy.test_o2ims_api_chart import ON

    r = render(ON)
    (api,) = [d for d in r.of_kind("Deployment") if d["metadata"]["name"].endswith("-o2ims-api")]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["O2_NATS_USER"]["value"] == "o2ims_api"
    assert env["O2_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": USERS_SECRET, "key": "o2ims_api"}
