"""``o2ctl demo`` (what ``make demo`` runs): the whole flow on a fresh sandbox, shown live, then stopped.

Starts a sandbox with the example inventory's clusters, submits ``allClusters``, follows it until
every cluster is fulfilled and the request Synced, says where to look next, and stops everything
(also on Ctrl-C or failure).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from o2ctl import client, commands, stack, up
from shared.payloads import FocomRequest


def run_demo(state: Path, *, hosts: int, example: Path, timeout: float, keep: bool, pace: str = "fast") -> int:
    if up.down(state):
        print(f"stopped a previous run in {state}")
    shutil.rmtree(state, ignore_errors=True)
    print(
        f"starting the sandbox O-Cloud ({hosts} SSH hosts, Kubernetes API emulator with CAPI/BYOH simulators, "
        "NATS) and the five services …",
        flush=True,
    )
    argv = ["--state-dir", str(state), "up", "--sandbox", "--hosts", str(hosts), "--inventory", str(example)]
    if pace != "fast":
        # Hosts take as long as real ones (see sandbox.hosts.latency), so each stage can be watched.
        argv += ["--pace", pace]
    try:
        run = up.detach(state, argv)
        print(f"ready: NATS {run.nats_url}; inventory {run.inventory}", flush=True)
        t = client.target(state)
        request = FocomRequest(name="demo", operation="create", allClusters=True)
        print("submitting allClusters as FOCOM request 'demo' …", flush=True)
        code = asyncio.run(commands.submit(t, request, wait=True, timeout=timeout, output="table"))
        if code == 0:
            print(f"\nwhere to look next (while it runs: o2ctl up --sandbox --state-dir {state}):")
            print("  o2ctl status demo              the request and its clusters")
            print("  o2ctl events demo              every transition, from the streams")
            print("  o2ctl kubeconfig <cluster>     a workload cluster's kubeconfig")
            if run.kubeconfig:
                # The demo submits on the bus, so there is no FPR object; its clusters are mirrored as CRs.
                print(f"  KUBECONFIG={run.kubeconfig} kubectl get oranpr   each cluster, as a Kubernetes object")
                print("  kubectl apply -f examples/focom-all-clusters.yaml   a request as a CR (kubectl get fpr)")
            print(f"  logs: {state / 'logs'}   inventory: {run.inventory}")
        return code
    finally:
        if not keep:
            up.down(state)
            print("stopped everything.", flush=True)


DEFAULT_EXAMPLE = stack.DEFAULT_EXAMPLE
