"""What ``o2ctl up`` runs: the embedded NATS, optionally the sandbox O-Cloud, and the five services.

The sandbox part starts the Kubernetes API emulator (with the simulated CAPI/BYOH controllers)
and the SSH sandbox hosts, then writes an inventory that lays the example clusters onto the
sandbox hosts. Every service gets its settings through the environment, exactly as in production.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from o2ctl.supervisor import ChildSpec, event_is, has_key

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("focom", "o2ims", "hostprep", "capi_renderer", "status_watcher", "o2ims_api")
SANDBOX_CNI = "bridge-pool"
DEFAULT_EXAMPLE = REPO / "examples" / "input.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reference_crds() -> Path:
    """The upstream CAPI/BYOH CRDs, beside the repository by default (``O2CTL_CRD_DIR`` overrides)."""
    import os

    return Path(os.environ.get("O2CTL_CRD_DIR") or REPO / ".." / "shared" / "crds").resolve()


def kubeapi_child(state: Path, port: int) -> ChildSpec:
    argv = [sys.executable, "-m", "sandbox.kubeapi", "--port", str(port), "--crds", str(reference_crds())]
    if (REPO / "deploy" / "crds").is_dir():
        argv += ["--crds", str(REPO / "deploy" / "crds")]
    argv += ["--kubeconfig-out", str(state / "kubeconfig"), "--state-dir", str(state / "kubeapi"), "--simulate-capi"]
    return ChildSpec("kubeapi", argv, ready=has_key("ready"), cwd=REPO)


def hosts_child(state: Path, count: int, port: int, faults: tuple[str, ...] = ()) -> ChildSpec:
    argv = [sys.executable, "-m", "sandbox.hosts", "--count", str(count), "--state-dir", str(state / "hosts"),
            "--port", str(port)]  # fmt: skip
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
        clusters.append({
            **cluster,
            "cluster_masters": [{"host_id": h["host_id"]} for h in taken[:masters]],
            "cluster_workers": [{"host_id": h["host_id"]} for h in taken[masters:]],
            "cni": SANDBOX_CNI,
        })  # fmt: skip
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
    env = {"O2_O2IMS_API_PORT": port.read_text().strip(), "O2_O2IMS_API_JWT_PUBLIC_KEY_FILE": str(pub),
           "O2_O2IMS_API_JWT_ISSUER": API_ISSUER, "O2_O2IMS_API_JWT_AUDIENCE": API_AUDIENCE,
           "O2_O2IMS_API_CALLBACK_ALLOW": json.dumps(["127.0.0.1", "localhost"])}  # fmt: skip
    if sandbox:
        env |= {"O2_O2IMS_API_INVENTORY_PATH": str(state / "input.json"),
                "O2_O2IMS_API_KUBECONFIG": str(state / "kubeconfig"), "O2_O2IMS_API_DEFAULT_CNI": SANDBOX_CNI}
    return env


def service_env(name: str, *, nats_url: str, state: Path, sandbox: bool) -> dict[str, str]:
    env = {"O2_NATS_URL": nats_url, "O2_LOG_FORMAT": "json", "O2_HTTP_PORT": "0"}
    if name == "o2ims_api":
        env |= api_env(state, sandbox=sandbox)
    if not sandbox:
        return env
    kubeconfig = str(state / "kubeconfig")
    inventory = str(state / "input.json")
    hosts = state / "hosts"
    per: dict[str, dict[str, str]] = {
        "focom": {"O2_FOCOM_INVENTORY_PATH": inventory, "O2_FOCOM_DEFAULT_CNI": SANDBOX_CNI},
        "o2ims": {},
        "hostprep": {
            "O2_HOSTPREP_INVENTORY_FILE": inventory,
            "O2_HOSTPREP_SSH_KEY_FILE": str(hosts / "id_ed25519"),
            "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(hosts / "known_hosts"),
            "O2_HOSTPREP_KUBECONFIG": kubeconfig,
            "O2_HOSTPREP_AGENT_BINARY_FILE": str(hosts / "byoh-hostagent-linux-amd64"),
        },
        "capi_renderer": {
            "O2_CAPI_RENDERER_KUBECONFIG": kubeconfig,
            "O2_CAPI_RENDERER_CRD_DIRS": json.dumps([str(reference_crds())]),
            "O2_CAPI_RENDERER_CNI_MANIFESTS": json.dumps(
                {SANDBOX_CNI: str(REPO / "examples" / "cni" / "bridge-pool.yaml")}
            ),
        },
        "status_watcher": {"O2_STATUS_WATCHER_KUBECONFIG": kubeconfig},
        "o2ims_api": {},
    }
    return {**env, **per[name]}


def service_child(name: str, env: dict[str, str]) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-m", f"services.{name}"], env=env, ready=event_is("service_ready"),
                     cwd=REPO)  # fmt: skip
