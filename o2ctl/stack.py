"""What ``o2ctl up`` runs: the embedded NATS, optionally the sandbox O-Cloud, and the five services.

The sandbox part starts the Kubernetes API emulator (with the simulated CAPI/BYOH controllers)
and the SSH sandbox hosts, then writes an inventory that lays the example clusters onto the
sandbox hosts. Every service gets its settings through the environment, exactly as in production,
including its own NATS identity: one password per role, kept in ``<state>/nats-credentials.json``
(mode 0600), and the embedded nats-server started with those users and their permissions.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from o2ctl.supervisor import ChildSpec, event_is, has_key
from shared import natsauth

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("focom", "o2ims", "hostprep", "capi_renderer", "status_watcher", "o2ims_api", "focom_api")
#: The CNI of sandbox clusters that name none: Calico, as everywhere (the renderer's default release).
SANDBOX_CNI = "calico"
#: What the sandbox carries for Calico: a stand-in file, mapped like an air-gapped site maps its copy.
SANDBOX_CNI_FILE = REPO / "examples" / "cni" / "calico-standin.yaml"
DEFAULT_EXAMPLE = REPO / "examples" / "input.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def extra_crd_dirs() -> list[Path]:
    """CRDs the sandbox emulator serves besides the carried CAPI/BYOH API it always installs: the
    project's own (``deploy/crds``) and, when ``O2CTL_CRD_DIR`` is set, that directory's (which
    replace carried ones of the same name, e.g. to run against the upstream files themselves)."""
    import os

    dirs = [REPO / "deploy" / "crds"] if (REPO / "deploy" / "crds").is_dir() else []
    if os.environ.get("O2CTL_CRD_DIR"):
        dirs.append(Path(os.environ["O2CTL_CRD_DIR"]).resolve())
    return dirs


def nats_passwords(state: Path) -> dict[str, SecretStr]:
    """Every role's NATS password, from the state dir's 0600 credentials file (created on first use)."""
    return natsauth.ensure_credentials(state / natsauth.CREDENTIALS_FILE)


def nats_users(passwords: Mapping[str, SecretStr]) -> list[natsauth.NatsUser]:
    """The embedded nats-server's users: one per role, with that role's permissions."""
    return natsauth.users_for(passwords)


def kubeapi_child(state: Path, port: int) -> ChildSpec:
    argv = [sys.executable, "-m", "sandbox.kubeapi", "--port", str(port)]
    for crd_dir in extra_crd_dirs():
        argv += ["--crds", str(crd_dir)]
    argv += ["--kubeconfig-out", str(state / "kubeconfig"), "--state-dir", str(state / "kubeapi"), "--simulate-capi"]
    return ChildSpec("kubeapi", argv, ready=has_key("ready"), cwd=REPO)


def hosts_child(state: Path, count: int, port: int, faults: tuple[str, ...] = (), latency: str = "fast") -> ChildSpec:
    argv = [
        sys.executable,
        "-m",
        "sandbox.hosts",
        "--count",
        str(count),
        "--state-dir",
        str(state / "hosts"),
        "--port",
        str(port),
        "--latency",
        latency,
    ]
    for fault in faults:
        argv += ["--fault", fault]
    return ChildSpec("hosts", argv, ready=event_is("sandbox_hosts_ready"), cwd=REPO)


def sandbox_inventory(example: Path, hosts: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    """The example inventory's clusters laid onto the sandbox hosts, in order.

    Cluster shapes (names, versions, control-plane and worker counts, network settings) come from
    the example; hosts are replaced by sandbox hosts. Clusters that no longer fit are dropped.
    """
    data = json.loads(example.read_text())
    pool = list(hosts)
    clusters = []
    for cluster in data.get("clusters", []):
        masters, workers = len(cluster.get("cluster_masters", [])), len(cluster.get("cluster_workers", []))
        if masters + workers > len(pool):
            break
        taken, pool = pool[: masters + workers], pool[masters + workers :]
        clusters.append(
            {
                **cluster,
                "cluster_masters": [{"host_id": h["host_id"]} for h in taken[:masters]],
                "cluster_workers": [{"host_id": h["host_id"]} for h in taken[masters:]],
            }
        )
    used_ips = {h["host_ip"] for h in hosts}
    # VIPs must be free addresses: give each cluster one from a loopback range no host uses.
    vips = (f"127.0.200.{i}" for i in range(1, 255) if f"127.0.200.{i}" not in used_ips)
    for cluster in clusters:
        cluster["control_plane_endpoint"] = next(vips)
    out = {k: v for k, v in data.items() if k not in ("hosts", "clusters")}
    out.update(namespace=namespace, hosts=hosts, clusters=clusters)
    return out


def api_files(state: Path) -> tuple[Path, Path, Path]:
    """The O2IMS API's token-signing key pair (private key 0600) and port file, made once per state dir."""
    from shared.httpapi.auth import generate_signing_key

    api = state / "o2ims-api"
    key, pub, port = api / "signing-key.pem", api / "signing-key.pub.pem", api / "port"
    if not key.exists() or not pub.exists():
        generate_signing_key(key, pub)
    if not port.exists():
        port.write_text(str(free_port()))
    return key, pub, port


API_ISSUER, API_AUDIENCE = "o2ctl", "o2ims"


def api_url(state: Path) -> str | None:
    port = state / "o2ims-api" / "port"
    return f"http://127.0.0.1:{port.read_text().strip()}" if port.exists() else None


def api_env(state: Path, *, sandbox: bool) -> dict[str, str]:
    _key, pub, port = api_files(state)
    # Replicas (the e2e harness runs several) share the one port.
    env = {
        "O2_O2IMS_API_PORT": port.read_text().strip(),
        "O2_O2IMS_API_REUSE_PORT": "true",
        "O2_O2IMS_API_JWT_PUBLIC_KEY_FILE": str(pub),
        "O2_O2IMS_API_JWT_ISSUER": API_ISSUER,
        "O2_O2IMS_API_JWT_AUDIENCE": API_AUDIENCE,
        # Callbacks on this machine by default; the environment may name others (e.g. an SMO test host).
        "O2_O2IMS_API_CALLBACK_ALLOW": os.environ.get("O2_O2IMS_API_CALLBACK_ALLOW")
        or json.dumps(["127.0.0.1", "localhost"]),
    }
    if sandbox:
        env |= {
            "O2_O2IMS_API_INVENTORY_PATH": str(state / "input.json"),
            "O2_O2IMS_API_SSH_KEY_DIR": str(sandbox_key_dir(state)),
            "O2_O2IMS_API_KUBECONFIG": str(state / "kubeconfig"),
            "O2_O2IMS_API_DEFAULT_CNI": SANDBOX_CNI,
        }
    return env


def focom_api_url(state: Path) -> str | None:
    port = state / "focom-api" / "port"
    return f"http://127.0.0.1:{port.read_text().strip()}/focom/v1" if port.exists() else None


def focom_api_env(state: Path, *, sandbox: bool) -> dict[str, str]:
    """FOCOM's northbound API: its own port, the same token keys as the O2IMS API (``o2ctl token`` serves both)."""
    _key, pub, _port = api_files(state)
    port = state / "focom-api" / "port"
    if not port.exists():
        port.parent.mkdir(parents=True, exist_ok=True)
        port.write_text(str(free_port()))
    env = {
        "O2_FOCOM_API_PORT": port.read_text().strip(),
        "O2_FOCOM_API_REUSE_PORT": "true",
        "O2_FOCOM_API_JWT_PUBLIC_KEY_FILE": str(pub),
        "O2_FOCOM_API_JWT_ISSUER": API_ISSUER,
        "O2_FOCOM_API_JWT_AUDIENCE": API_AUDIENCE,
        "O2_FOCOM_API_CALLBACK_ALLOW": os.environ.get("O2_FOCOM_API_CALLBACK_ALLOW")
        or json.dumps(["127.0.0.1", "localhost"]),
        # The request rules must be focom's: a VIP pool there lets clusters omit their VIP here too.
        "O2_FOCOM_API_VIP_POOL": "true" if os.environ.get("O2_FOCOM_VIP_POOL") else "false",
    }
    if sandbox:
        env |= {
            "O2_FOCOM_API_INVENTORY_PATH": str(state / "input.json"),
            "O2_FOCOM_API_SSH_KEY_DIR": str(sandbox_key_dir(state)),
            "O2_FOCOM_API_DEFAULT_CNI": SANDBOX_CNI,
        }
    return env


def sandbox_key_dir(state: Path) -> Path:
    """Where a sandbox's inventory key files live (its hosts' client key): the key directory of its services."""
    return state / "hosts"


def service_env(
    name: str, *, nats_url: str, state: Path, sandbox: bool, passwords: Mapping[str, SecretStr] | None = None
) -> dict[str, str]:
    """A service's environment; with ``passwords`` it connects to NATS as its own role."""
    env = {"O2_NATS_URL": nats_url, "O2_LOG_FORMAT": "json", "O2_HTTP_PORT": "0"}
    if passwords is not None:
        env.update(natsauth.service_env(name, passwords))
    if name == "o2ims_api":
        env |= api_env(state, sandbox=sandbox)
    if name == "focom_api":
        env |= focom_api_env(state, sandbox=sandbox)
    if not sandbox:
        return env
    kubeconfig = str(state / "kubeconfig")
    inventory = str(state / "input.json")
    hosts = sandbox_key_dir(state)
    per: dict[str, dict[str, str]] = {
        # The FocomProvisioningRequest face and the ProvisioningRequest mirror, as in the chart: `kubectl apply`
        # of an FPR drives the flow and `kubectl get fpr,oranpr` shows it.
        # The sandbox inventory's key files live with the sandbox hosts: that is the key directory here.
        "focom": {
            "O2_FOCOM_INVENTORY_PATH": inventory,
            "O2_FOCOM_KUBE_ENABLED": "true",
            "O2_FOCOM_KUBECONFIG": kubeconfig,
            "O2_FOCOM_SSH_KEY_DIR": str(hosts),
        },
        "o2ims": {"O2_O2IMS_MIRROR_ENABLED": "true", "O2_O2IMS_MIRROR_KUBECONFIG": kubeconfig},
        "hostprep": {
            "O2_HOSTPREP_INVENTORY_FILE": inventory,
            "O2_HOSTPREP_SSH_KEY_DIR": str(hosts),
            "O2_HOSTPREP_SSH_KEY_FILE": str(hosts / "id_ed25519"),
            "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(hosts / "known_hosts"),
            "O2_HOSTPREP_KUBECONFIG": kubeconfig,
            "O2_HOSTPREP_AGENT_BINARY_FILE": str(hosts / "byoh-hostagent-linux-amd64"),
        },
        "capi_renderer": {
            "O2_CAPI_RENDERER_KUBECONFIG": kubeconfig,
            # capi_renderer validates against the CRDs the emulator serves, and gets Calico's stand-in
            # from a local file (no download in the sandbox).
            "O2_CAPI_RENDERER_CNI_SOURCES": json.dumps({SANDBOX_CNI: str(SANDBOX_CNI_FILE)}),
            "O2_CAPI_RENDERER_CNI_CACHE_DIR": str(state / "cni-cache"),
        },
        "status_watcher": {"O2_STATUS_WATCHER_KUBECONFIG": kubeconfig},
        "o2ims_api": {},
        "focom_api": {},
    }
    return {**env, **per[name]}


def service_child(name: str, env: dict[str, str]) -> ChildSpec:
    return ChildSpec(
        name, [sys.executable, "-m", f"services.{name}"], env=env, ready=event_is("service_ready"), cwd=REPO
    )
