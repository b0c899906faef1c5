"""The Helm chart lints clean, renders for default/production/full values, and refuses invalid values clearly."""

from __future__ import annotations

import base64
import json
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.chart import (
    AUTH_VARIANTS,
    COMPONENTS,
    FULL_VALUES,
    MODULES,
    NAMESPACE,
    RELEASE,
    lint,
    merge,
    production_values,
    render,
)

SERVICE_KEYS = list(COMPONENTS)


def _problems(report: dict[str, Any]) -> list[dict[str, Any]]:
    # Severity 1 is informational ("icon is recommended"); strict mode fails on 2 (warning) and 3 (error).
    return [m for m in report["messages"] if m["severity"] >= 2]


@pytest.mark.parametrize("case", ["default", "production", "full"])
def test_chart_lints_clean_in_strict_mode(case: str) -> None:
    values = {"default": None, "production": production_values(), "full": FULL_VALUES}[case]
    report = lint(values)
    assert report["total_charts_linted"] == 1
    assert _problems(report) == [] and report["errors"] == []


def test_lint_reports_invalid_values() -> None:
    report = lint({"services": {"focom": {"replicas": "three"}}})
    assert report["errors"], report
    assert any("/services/focom/replicas" in e for e in report["errors"])


def test_default_values_render_a_trial_install() -> None:
    r = render()
    deployments = {d["metadata"]["name"]: d for d in r.of_kind("Deployment")}
    assert set(deployments) == {f"{RELEASE}-focom-o2ims-{c}" for c in COMPONENTS.values()}
    for key in SERVICE_KEYS:
        c = r.container(key)
        module = {"capiRenderer": "capi_renderer", "statusWatcher": "status_watcher"}.get(key, key)
        if key == "hostprep":  # the open-files limit for its SSH connections, then the service itself
            assert c["command"] == ["sh", "-c", f"ulimit -n 65536 && exec python -m services.{module}"]
        else:
            assert c["command"] == ["python", "-m", f"services.{module}"]
        assert r.deployment(key)["spec"]["replicas"] == 1
        assert r.env(key)["O2_NATS_URL"]["value"] == f"nats://{RELEASE}-focom-o2ims-nats:4222"
    nats = r.get("StatefulSet", f"{RELEASE}-focom-o2ims-nats")
    assert nats["spec"]["replicas"] == 1
    conf = r.get("ConfigMap", f"{RELEASE}-focom-o2ims-nats")["data"]["nats.conf"]
    assert "jetstream" in conf and "store_dir: /data" in conf
    assert r.of_kind("ServiceMonitor") == []
    # The only Secret of a default install: the generated per-service NATS passwords.
    assert [s["metadata"]["name"] for s in r.of_kind("Secret")] == [f"{RELEASE}-focom-o2ims-nats-users"]
    assert "NO INVENTORY is configured" in r.notes and "trials only" in r.notes


def test_production_values_render() -> None:
    r = render(production_values())
    for key in ("focom", "o2ims", "hostprep", "capiRenderer"):
        assert r.deployment(key)["spec"]["replicas"] == 3
    assert r.of_kind("StatefulSet") == [], "no embedded NATS with an external one"
    for key in SERVICE_KEYS:
        env = r.env(key)
        assert env["O2_NATS_URL"]["value"] == "tls://nats.nats.svc:4222"
        assert env["O2_STREAM_REPLICAS"]["value"] == "3"
        # Each service its own identity: its own user, its own key of the existing Secret.
        assert env["O2_NATS_USER"]["value"] == MODULES[key]
        assert env["O2_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "focom-o2ims-nats-users",
            "key": MODULES[key],
        }
        assert env["O2_NATS_TLS_CA"]["value"] == "/etc/focom-o2ims/nats-tls/ca.crt"
    (monitor,) = r.of_kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    services = {s["metadata"]["name"] for s in r.of_kind("Service")}
    assert services == {f"{RELEASE}-focom-o2ims-{c}" for c in COMPONENTS.values()}
    assert r.of_kind("Secret") == [], "production names existing Secrets only"
    assert "tls://nats.nats.svc:4222" in r.notes


def test_every_deployment_has_probes_metrics_port_resources_and_hardening() -> None:
    r = render(production_values())
    for key in SERVICE_KEYS:
        dep = r.deployment(key)
        pod = dep["spec"]["template"]["spec"]
        c = r.container(key)
        assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        env = r.env(key)
        assert env["O2_HTTP_HOST"]["value"] == "0.0.0.0" and env["O2_HTTP_PORT"]["value"] == "8080"
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert "/tmp" in mounts, "a writable /tmp beside the read-only root"
        assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp")
        assert pod["serviceAccountName"] == f"{RELEASE}-focom-o2ims-{COMPONENTS[key]}"
        assert pod["terminationGracePeriodSeconds"] == 30  # drain_timeout 20 + 10
        pdb = r.get("PodDisruptionBudget", dep["metadata"]["name"])
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"] == dep["spec"]["selector"]
        for spread in pod["topologySpreadConstraints"]:
            assert spread["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_secrets_never_appear_as_plain_values() -> None:
    for values in (FULL_VALUES, *(merge(FULL_VALUES, v) for v in AUTH_VARIANTS)):
        r = render(values)
        secret_values = {"pw", "tok", "pass"} | {values["ssh"]["privateKey"].strip()}
        for key in SERVICE_KEYS:
            for var in r.env(key).values():
                assert var.get("value") not in secret_values, var["name"]
        for cm in r.of_kind("ConfigMap"):
            text = json.dumps(cm)
            assert "PRIVATE KEY" not in text and '"pw"' not in text


def test_inline_secrets_are_created_and_mounted() -> None:
    r = render(FULL_VALUES)
    ssh = r.get("Secret", f"{RELEASE}-focom-o2ims-ssh")
    assert base64.b64decode(ssh["data"]["ssh-privatekey"]).decode() == FULL_VALUES["ssh"]["privateKey"]
    keys = r.get("Secret", f"{RELEASE}-focom-o2ims-host-keys")
    pinned = yaml.safe_load(base64.b64decode(keys["data"]["pinned_host_keys.yaml"]))
    assert pinned == FULL_VALUES["ssh"]["hostKeys"]["pinned"]
    env = r.env("hostprep")
    assert env["O2_HOSTPREP_SSH_KEY_PASSPHRASE"]["valueFrom"]["secretKeyRef"]["key"] == "passphrase"
    assert env["O2_HOSTPREP_KNOWN_HOSTS_FILE"]["value"] == "/etc/focom-o2ims/host-keys/known_hosts"
    inventory = r.get("ConfigMap", f"{RELEASE}-focom-o2ims-inventory")
    assert json.loads(inventory["data"]["input.json"]) == FULL_VALUES["inventory"]["content"]
    cni = json.loads(r.env("capiRenderer")["O2_CAPI_RENDERER_CNI_MANIFESTS"]["value"])
    assert cni == {"calico": "/etc/focom-o2ims/cni/calico.yaml"}
    for key in SERVICE_KEYS:
        # Each service mounts only its own role's .creds file from the existing Secret.
        role = MODULES[key]
        assert r.env(key)["O2_NATS_CREDS_FILE"]["value"] == f"/etc/focom-o2ims/nats-auth/{role}.creds"
        volumes = {v["name"]: v for v in r.deployment(key)["spec"]["template"]["spec"]["volumes"]}
        assert volumes["nats-auth"]["secret"]["secretName"] == "nats-creds"
        assert volumes["nats-auth"]["secret"]["items"] == [{"key": f"{role}.creds", "path": f"{role}.creds"}]


def test_service_account_tokens_only_where_an_api_is_used() -> None:
    default = render()
    automount = {
        k: default.deployment(k)["spec"]["template"]["spec"]["automountServiceAccountToken"] for k in SERVICE_KEYS
    }
    assert automount == {"focom": True, "o2ims": False, "hostprep": True, "capiRenderer": True, "statusWatcher": True}
    external = render({"managementCluster": {"kubeconfigSecret": "mgmt"}, "services": {"focom": {"watchCRs": False}}})
    for key in SERVICE_KEYS:
        assert external.deployment(key)["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    for key in ("hostprep", "capiRenderer", "statusWatcher"):
        prefix = {"capiRenderer": "O2_CAPI_RENDERER_", "statusWatcher": "O2_STATUS_WATCHER_"}.get(key, "O2_HOSTPREP_")
        assert external.env(key)[f"{prefix}KUBECONFIG"]["value"] == "/etc/focom-o2ims/management/kubeconfig"


def test_hostprep_open_files_limit_can_be_left_to_the_runtime() -> None:
    assert render({"services": {"hostprep": {"openFilesLimit": 4096}}}).container("hostprep")["command"] == [
        "sh",
        "-c",
        "ulimit -n 4096 && exec python -m services.hostprep",
    ]
    assert render({"services": {"hostprep": {"openFilesLimit": 0}}}).container("hostprep")["command"] == [
        "python",
        "-m",
        "services.hostprep",
    ]


def test_a_service_can_be_disabled() -> None:
    r = render({"services": {"o2ims": {"enabled": False}}})
    names = {o["metadata"]["name"] for o in r.objects}
    assert f"{RELEASE}-focom-o2ims-o2ims" not in names


def test_release_namespace_is_used() -> None:
    r = render(namespace="elsewhere")
    for obj in r.objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "elsewhere", obj["metadata"]["name"]
    assert NAMESPACE != "elsewhere"


INVALID = [
    pytest.param({"nats": {"embedded": {"enabled": False}}}, "nats.url is empty", id="no-nats"),
    pytest.param({"nats": {"url": "nats://x:4222"}}, "exclude each other", id="two-nats"),
    pytest.param({"settings": {"stream_replicas": 3}}, "needs a NATS cluster", id="r3-on-single-node"),
    pytest.param(
        {"nats": {"url": "nats://x:4222", "embedded": {"enabled": False}, "auth": {"method": "creds"}}},
        "nats.auth.method=creds needs nats.auth.existingSecret",
        id="creds-missing",
    ),
    pytest.param({"nats": {"auth": {"method": "none"}}}, "trialInsecureOpenBus", id="open-bus-without-switch"),
    pytest.param(
        {"nats": {"auth": {"trialInsecureOpenBus": True}}},
        "applies only to nats.auth.method=none",
        id="switch-without-none",
    ),
    pytest.param(
        {"nats": {"auth": {"method": "creds", "existingSecret": "c"}}}, "no operator/JWT mode", id="creds-on-embedded"
    ),
    pytest.param({"nats": {"auth": {"method": "userPassword"}}}, "/nats/auth/method", id="shared-identity-gone"),
    pytest.param(
        {"managementCluster": {"allNamespaces": True, "namespaces": ["a"]}},
        "exclude each other",
        id="all-and-listed-namespaces",
    ),
    pytest.param(
        {"nats": {"url": "nats://x:4222", "embedded": {"enabled": False}, "tls": {"enabled": True}}},
        "nats.tls.enabled needs nats.tls.existingSecret",
        id="tls-without-secret",
    ),
    pytest.param(
        {"inventory": {"content": {"hosts": [{"host_id": "h1", "host_pwd": "x"}]}}},
        "inventory.content.hosts[0] has host_pwd",
        id="password-in-configmap",
    ),
    pytest.param(
        {"inventory": {"existingConfigMap": "a", "existingSecret": "b"}}, "only one of inventory", id="two-inventories"
    ),
    pytest.param({"cni": {"existingConfigMap": "cni"}}, "needs cni.names", id="cni-without-names"),
    pytest.param({"ssh": {"existingSecret": "s", "privateKey": "k"}}, "ssh.existingSecret excludes", id="two-ssh-keys"),
    # values.schema.json: the message names the key.
    pytest.param({"services": {"focom": {"replicas": -1}}}, "/services/focom/replicas", id="negative-replicas"),
    pytest.param({"settings": {"log_level": "loud"}}, "/settings/log_level", id="bad-enum"),
    pytest.param(
        {"services": {"hostprep": {"settings": {"max_paralel_hosts": 3}}}}, "max_paralel_hosts", id="misspelt-setting"
    ),
    pytest.param(
        {"services": {"hostprep": {"settings": {"kubeconfig": "/x"}}}}, "kubeconfig", id="derived-setting-refused"
    ),
    pytest.param(
        {"services": {"o2ims": {"settings": {"history_limit": 0}}}},
        "/services/o2ims/settings/history_limit",
        id="setting-below-minimum",
    ),
    pytest.param({"servces": {}}, "servces", id="unknown-top-level-key"),
    pytest.param({"image": {"digest": "sha256:nothex"}}, "/image/digest", id="bad-digest"),
]


@pytest.mark.parametrize(("values", "message"), INVALID)
def test_invalid_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as err:
        render(values)
    assert message in str(err.value)
